// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";

import {IERC3009} from "../../contracts/interfaces/IERC3009.sol";

/// @title ReferenceEscrow
/// @notice Benchmark-only floor for a per-order escrow: two storage slots per order (payer|amount,
///         payee|deadline), one event per operation, a plain token call, nothing else (no reentrancy guard, no
///         balance-delta check, no status, no arbiter, no partial amounts, no deferred payouts). Measured in the
///         same run and on the same token as HoldfastEscrow, so the difference is what Holdfast's rules cost.
///         Never deploy it.
contract ReferenceEscrow {
    struct Order {
        address payer;
        uint96 amount;
        address payee;
        uint64 deadline;
    }

    /// @notice The escrowed token.
    IERC20 public immutable token;
    /// @notice Orders by id.
    mapping(bytes32 orderId => Order) public orders;

    event Locked(
        bytes32 indexed orderId, address indexed payer, address indexed payee, uint256 amount, uint64 deadline
    );
    event Released(bytes32 indexed orderId, uint256 amount);
    event Refunded(bytes32 indexed orderId, uint256 amount);

    error OrderExists();
    error NotAllowed();
    error NothingHeld();
    error TransferFailed();

    constructor(IERC20 token_) {
        token = token_;
    }

    /// @notice Lock `amount` from the caller (after an approve).
    function lock(bytes32 orderId, address payee, uint96 amount, uint64 deadline) external {
        _record(msg.sender, orderId, payee, amount, deadline);
        if (!token.transferFrom(msg.sender, address(this), amount)) revert TransferFailed();
    }

    /// @notice Lock with an EIP-3009 receiveWithAuthorization signed by `payer` over a nonce binding the terms.
    function lockWithAuthorization(
        address payer,
        bytes32 orderId,
        address payee,
        uint96 amount,
        uint64 deadline,
        uint256 validAfter,
        uint256 validBefore,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external {
        _record(payer, orderId, payee, amount, deadline);
        bytes32 nonce = keccak256(abi.encode(address(this), block.chainid, orderId, payee, amount, deadline));
        IERC3009(address(token))
            .receiveWithAuthorization(payer, address(this), amount, validAfter, validBefore, nonce, v, r, s);
    }

    /// @notice The EIP-3009 nonce for these terms.
    function authorizationNonce(bytes32 orderId, address payee, uint96 amount, uint64 deadline)
        external
        view
        returns (bytes32)
    {
        return keccak256(abi.encode(address(this), block.chainid, orderId, payee, amount, deadline));
    }

    /// @notice The payer releases everything to the payee.
    function release(bytes32 orderId) external {
        Order storage o = orders[orderId];
        if (msg.sender != o.payer) revert NotAllowed();
        uint256 amount = o.amount;
        if (amount == 0) revert NothingHeld();
        o.amount = 0;
        emit Released(orderId, amount);
        if (!token.transfer(o.payee, amount)) revert TransferFailed();
    }

    /// @notice The payee (or anyone after the deadline) refunds everything to the payer.
    function refund(bytes32 orderId) external {
        Order storage o = orders[orderId];
        if (msg.sender != o.payee && block.timestamp <= o.deadline) revert NotAllowed();
        uint256 amount = o.amount;
        if (amount == 0) revert NothingHeld();
        o.amount = 0;
        emit Refunded(orderId, amount);
        if (!token.transfer(o.payer, amount)) revert TransferFailed();
    }

    function _record(address payer, bytes32 orderId, address payee, uint96 amount, uint64 deadline) private {
        if (orders[orderId].payer != address(0)) revert OrderExists();
        orders[orderId] = Order(payer, amount, payee, deadline);
        emit Locked(orderId, payer, payee, amount, deadline);
    }
}
