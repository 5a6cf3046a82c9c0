// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {MockERC20} from "./MockERC20.sol";

/// @title FeeOnTransferToken
/// @notice ERC-20 that burns `feeBps` basis points of every transfer (mints are fee-free). It also offers an
///         EIP-3009-shaped `receiveWithAuthorization` that checks no signature (only that the caller is `to`),
///         so the escrow's deposit check can be exercised through lockWithAuthorization too.
contract FeeOnTransferToken is MockERC20 {
    uint256 public feeBps;

    constructor(uint256 feeBps_) MockERC20("Fee on Transfer", "FEE") {
        feeBps = feeBps_;
    }

    function setFeeBps(uint256 feeBps_) external {
        feeBps = feeBps_;
    }

    /// @notice The fee on a transfer of `amount`.
    function feeOn(uint256 amount) public view returns (uint256) {
        return amount * feeBps / 10_000;
    }

    /// @notice Moves `value` from `from` to the caller `to` (minus the fee); no signature check (tests only).
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256,
        uint256,
        bytes32,
        uint8,
        bytes32,
        bytes32
    ) external {
        require(msg.sender == to, "FeeOnTransferToken: caller must be payee");
        _transfer(from, to, value);
    }

    function _update(address from, address to, uint256 amount) internal override {
        uint256 fee = (from == address(0) || to == address(0)) ? 0 : feeOn(amount);
        if (fee != 0) super._update(from, address(0), fee);
        super._update(from, to, amount - fee);
    }
}
