//! The FixLoop conformance runner (to be built): checks any server against `openapi.yaml` and the WebSocket schemas,
//! knowing it only through HTTP and WebSocket.
