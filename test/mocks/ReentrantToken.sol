// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {MockERC20} from "./MockERC20.sol";

/// @title ReentrantToken
/// @notice ERC-20 that, once armed, makes one call to `target` with `data` in the middle of its next transfer
///         (before balances move), like an ERC-777 hook. With `bubble`, a failed callback reverts the transfer
///         with the callback's revert data; without it, the outcome is recorded and the transfer proceeds.
contract ReentrantToken is MockERC20 {
    address public target;
    bytes public data;
    bool public bubble;
    bool public armed;

    /// @notice Whether the last callback succeeded, and what it returned (its revert data if it failed).
    bool public lastSuccess;
    bytes public lastReturnData;
    uint256 public callbacks;

    constructor() MockERC20("Reentrant", "REENTER") {}

    /// @notice Arm one callback to `target_` with `data_` for the next transfer.
    function arm(address target_, bytes calldata data_, bool bubble_) external {
        target = target_;
        data = data_;
        bubble = bubble_;
        armed = true;
    }

    /// @notice Cancel an armed callback (a bubbled failure reverts the disarming done in the transfer too).
    function disarm() external {
        armed = false;
    }

    function _update(address from, address to, uint256 amount) internal override {
        if (armed && from != address(0) && to != address(0)) {
            armed = false;
            (bool success, bytes memory returnData) = target.call(data);
            lastSuccess = success;
            lastReturnData = returnData;
            ++callbacks;
            if (!success && bubble) {
                assembly ("memory-safe") {
                    revert(add(returnData, 0x20), mload(returnData))
                }
            }
        }
        super._update(from, to, amount);
    }
}
