//! Generated code only: the prost messages of the stored event schema and the gRPC API, compiled
//! from the workspace's `proto/` folder, which is the single source of truth. Nothing here is
//! written by hand but this module tree; change the `.proto` files instead.

#![allow(missing_debug_implementations, clippy::all, clippy::pedantic)]

/// The encoded `FileDescriptorSet` of every proto file, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/voucherledger_descriptor.bin"));

/// The stored event schema, `voucherledger.event.v1`.
pub mod event {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/voucherledger.event.v1.rs"));
    }
}

/// The wire API, `voucherledger.v1`: messages, clients and servers.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/voucherledger.v1.rs"));
}
