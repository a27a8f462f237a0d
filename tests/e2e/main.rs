//! End-to-end tests of the whole workspace through the `automaton` binary, the way a new
//! user meets it: init, status, doctor.

// `cfg(test)` lets clippy treat the helpers as test code (unwrap allowed there).
#[cfg(test)]
mod init_status_doctor;
