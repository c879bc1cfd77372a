//! Tests for the simulator over real sockets.
