//! Id newtypes of the core. Ids are plain strings on the wire; the core never invents randomness.

use std::fmt;

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Wraps a wire id.
            #[must_use]
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as it appears on the wire.
            #[must_use]
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(
    /// Id of an incident (`incident_id`).
    IncidentId
);
string_id!(
    /// Id of a validation run (`run_id`).
    RunId
);
string_id!(
    /// Id of a plan (`plan_id`).
    PlanId
);
string_id!(
    /// Id of a remediation proposal (`rem-<prefix>-<n>`).
    ProposalId
);

/// Id of an effect that expects an answer; the answer comes back as an input naming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EffectId(pub u64);

impl fmt::Display for EffectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "effect-{}", self.0)
    }
}
