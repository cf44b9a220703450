//! price (to be written)
