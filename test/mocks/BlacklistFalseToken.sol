// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {MockERC20} from "./MockERC20.sol";

/// @title BlacklistFalseToken
/// @notice ERC-20 with a blacklist that makes `transfer` / `transferFrom` from or to a blacklisted address
///         return `false` (moving nothing) rather than revert.
contract BlacklistFalseToken is MockERC20 {
    mapping(address account => bool) public isBlacklisted;

    constructor() MockERC20("Blacklist returns false", "BLF") {}

    function blacklist(address account) external {
        isBlacklisted[account] = true;
    }

    function unBlacklist(address account) external {
        isBlacklisted[account] = false;
    }

    function transfer(address to, uint256 amount) public override returns (bool) {
        if (isBlacklisted[msg.sender] || isBlacklisted[to]) return false;
        return super.transfer(to, amount);
    }

    function transferFrom(address from, address to, uint256 amount) public override returns (bool) {
        if (isBlacklisted[from] || isBlacklisted[to]) return false;
        return super.transferFrom(from, to, amount);
    }
}
