//! The flags `berth run` and `berth create` share, one file per option
//! group as nerdctl has them: networking ([`network`]) and resource limits
//! and restart policies ([`resources`]).

pub mod network;
pub mod resources;
