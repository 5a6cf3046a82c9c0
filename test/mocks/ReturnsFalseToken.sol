// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {MockERC20} from "./MockERC20.sol";

/// @title ReturnsFalseToken
/// @notice ERC-20 whose `transfer` / `transferFrom` return `false` (moving nothing) instead of reverting
///         while the matching switch is on. Both switches start on.
contract ReturnsFalseToken is MockERC20 {
    bool public failTransfer = true;
    bool public failTransferFrom = true;

    constructor() MockERC20("Returns False", "FALSE") {}

    function setFail(bool transfer_, bool transferFrom_) external {
        failTransfer = transfer_;
        failTransferFrom = transferFrom_;
    }

    function transfer(address to, uint256 amount) public override returns (bool) {
        if (failTransfer) return false;
        return super.transfer(to, amount);
    }

    function transferFrom(address from, address to, uint256 amount) public override returns (bool) {
        if (failTransferFrom) return false;
        return super.transferFrom(from, to, amount);
    }
}
