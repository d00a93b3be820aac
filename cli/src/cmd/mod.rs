//! One module per command.

pub mod bench;
pub mod init;
pub mod inspect;
pub mod model;
pub mod package;
pub mod prove;
pub mod run;
pub mod test;
pub mod verify;
