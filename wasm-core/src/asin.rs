//! asin (to be written)
