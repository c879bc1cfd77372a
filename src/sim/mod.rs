//! The built-in bunq partner API simulator (placeholder, replaced by the simulator work).
