// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {MockERC20} from "./MockERC20.sol";

/// @title RevertingToken
/// @notice ERC-20 whose `transfer` and `transferFrom` always revert with {TransfersDisabled}.
contract RevertingToken is MockERC20 {
    error TransfersDisabled();

    constructor() MockERC20("Reverting", "REVERT") {}

    function transfer(address, uint256) public pure override returns (bool) {
        revert TransfersDisabled();
    }

    function transferFrom(address, address, uint256) public pure override returns (bool) {
        revert TransfersDisabled();
    }
}
