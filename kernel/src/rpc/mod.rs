//! The RPC client (the channel to dom0's shadowdaemon, offered again after a
//! daemon restart) and the vchan servers it and the programs use.

pub mod client;
pub mod vchan;
