//! Input CSV: dialects, decoding and per-row validation (placeholder, replaced by the input work).
