//! edm — Edge DNSTAP Minimiser.
//!
//! A resolver streams dnstap over Frame Streams; edm keeps the responses,
//! pseudonymises addresses with Crypto-PAn and writes minute-aligned Parquet
//! files.
//!
//! # Layout (in pipeline order)
//!
//! | module | job |
//! |---|---|
//! | [`config`] | keys, defaults, TOML + flag loading, validation |
//! | [`input`] | Frame Streams listeners and capture-file reader; [`input::framestream`] is the pure codec |
//! | [`dnstap`] | protobuf envelope decode |
//! | [`dns`] | DNS wire parsing with the reference's (miekg) semantics |
//! | [`cryptopan`] | Crypto-PAn pseudonymisation with the argon2id KDF |
//! | [`lists`] | well-known and ignored-name lists (`fst`), ignored-client CIDR set |
//! | [`histogram`] | well-known-domain counters and HyperLogLog client sketches |
//! | [`minimiser`] | worker threads; [`minimiser::core`] is the pure per-frame function |
//! | [`collector`] | aggregation and minute rotation; [`collector::session`] schema, [`collector::parquet_file`] durable writes |
//! | [`metrics`], [`http`] | every metric, and the `/metrics` endpoint |
//! | [`keyed_hash`] | the per-table keyed hash of the large open tables |
//! | [`mem_hints`] | hints for the large tables: cache-line prefetch, transparent huge pages |
//! | [`written_blocks`] | lets the large caches commit memory as used without reading untouched pages |
//! | [`service`] | wiring, startup and lossless shutdown |
#![warn(missing_docs)]

pub mod cli;
pub mod collector;
pub mod config;
pub mod cryptopan;
pub mod dns;
pub mod dnstap;
pub mod error;
pub mod histogram;
pub mod http;
pub mod input;
pub mod keyed_hash;
pub mod lists;
pub mod loadgen;
pub mod mem_hints;
pub mod metrics;
pub mod minimiser;
pub mod newqname;
pub mod procstat;
pub mod reload;
pub mod service;
pub mod written_blocks;
