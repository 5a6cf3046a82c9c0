//! Contract bindings generated at compile time from the Solidity interface in `contracts/` itself, so the
//! indexer's view of events, errors and functions cannot drift from the contract (the escrow implements the
//! interface, so the compiler keeps the two in step). With the `rpc` feature the same types also get their
//! RPC instances (`IHoldfastEscrow::new(address, provider)`).

#![allow(missing_docs, unreachable_pub, clippy::all)]

#[cfg(not(feature = "rpc"))]
alloy::sol!(
    #[sol(all_derives)]
    "../contracts/interfaces/IHoldfastEscrow.sol"
);

#[cfg(feature = "rpc")]
alloy::sol!(
    #[sol(rpc, all_derives)]
    "../contracts/interfaces/IHoldfastEscrow.sol"
);
