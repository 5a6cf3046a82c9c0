// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IERC3009
/// @notice The part of EIP-3009 (transfer with authorization, as in USDC) the escrow uses.
interface IERC3009 {
    /// @notice Receive a transfer authorized by `from`'s signature; the caller must be `to`.
    /// @param from Payer and signer.
    /// @param to Payee; must be the caller.
    /// @param value Amount in base units.
    /// @param validAfter The authorization is valid after this time.
    /// @param validBefore The authorization is valid before this time.
    /// @param nonce Unique nonce chosen by the signer.
    /// @param v Signature part.
    /// @param r Signature part.
    /// @param s Signature part.
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;
}
