//! The verifier: the crawler that checks suspicious reports and refreshes
//! watched products (filled in by the trust-but-verify issue).
