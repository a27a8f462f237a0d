//! The forge on the local platform, against real bare repositories.

use super::*;
