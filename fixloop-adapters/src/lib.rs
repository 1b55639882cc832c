//! Ports and adapters of FixLoop (to be built): the signal-source, planner, test-runner and copilot traits, the
//! real adapters (Datadog, Prometheus, local scrape, MiniMax, TestSprite, built-in HTTP runner) and deterministic fakes.
