// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {IHoldfastEscrow} from "../../contracts/interfaces/IHoldfastEscrow.sol";

/// @title LoadGenerator
/// @notice Test and benchmark helper: acts as the payer of many orders per transaction, so that large event
///         volumes (for the indexer's drills and backfill benchmarks) take few transactions. Must hold tokens.
contract LoadGenerator {
    IHoldfastEscrow public immutable escrow;

    constructor(IHoldfastEscrow escrow_) {
        escrow = escrow_;
        IERC20(escrow_.token()).approve(address(escrow_), type(uint256).max);
    }

    /// @notice Lock `n` orders with ids `firstId`..`firstId+n-1`, amounts 1..n base units (plus `amountBase`).
    function lockMany(uint256 firstId, uint256 n, address payee, uint256 amountBase, uint64 deliverBy) external {
        for (uint256 i; i < n; ++i) {
            escrow.lock(bytes32(firstId + i), payee, amountBase + i + 1, address(0), deliverBy, 60);
        }
    }

    /// @notice Release orders `firstId`..`firstId+n-1` (locked by {lockMany} with the same `amountBase`): even
    ///         ids in full (settled), odd ids half plus one base unit (still held).
    function releaseMany(uint256 firstId, uint256 n, uint256 amountBase) external {
        for (uint256 i; i < n; ++i) {
            uint256 amount = amountBase + i + 1;
            escrow.release(bytes32(firstId + i), (firstId + i) % 2 == 0 ? amount : amount / 2 + 1);
        }
    }
}
