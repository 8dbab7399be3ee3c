//! Name and address lists: the well-known-domains and ignored-question lists
//! as `fst` ([`names`]), and the ignored-client CIDR set ([`clients`]).

pub mod clients;
pub mod names;
