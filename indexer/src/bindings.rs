//! Contract bindings generated at compile time from the Solidity interface in `contracts/` itself, so the
//! indexer's view of events, errors and functions cannot drift from the contract (the escrow implements the
//! interface, so the compiler keeps the two in step).

#![allow(missing_docs, unreachable_pub, clippy::all)]

alloy::sol!(
    #[sol(rpc, all_derives)]
    "../contracts/interfaces/IHoldfastEscrow.sol"
);

alloy::sol! {
    #[sol(rpc)]
    /// The one ERC-20 view the reconciliation needs.
    interface IERC20Balance {
        function balanceOf(address account) external view returns (uint256);
    }
}
