//! The load tool behind `edm bench`: a deterministic synthetic workload
//! ([`workload`]) sent to a real `edm run` child over a unix socket, with
//! end-to-end throughput, CPU time and peak RSS measured ([`bench`](mod@bench)).

pub mod bench;
pub mod workload;
