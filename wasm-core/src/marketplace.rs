//! marketplace (to be written)
