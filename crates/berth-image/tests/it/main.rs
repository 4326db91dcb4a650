//! Integration tests: real pulls from an in-process registry on
//! 127.0.0.1, real unpacking, real overlay mounts (we run as root).

mod support;

mod load;
mod pull;
mod rootfs;
mod unpack;
