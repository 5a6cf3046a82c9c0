// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {HoldfastEscrow} from "../../contracts/HoldfastEscrow.sol";
import {IHoldfastEscrow} from "../../contracts/interfaces/IHoldfastEscrow.sol";
import {VM} from "../lib/Vm.sol";
import {ReentrantToken} from "../mocks/ReentrantToken.sol";
import {EscrowTestBase} from "./EscrowTestBase.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/// @notice A token that calls back into the escrow in the middle of a transfer (deposit, payout, withdraw)
///         hits the transient reentrancy guard on every state-changing entry point.
contract ReentrancyTest is EscrowTestBase {
    ReentrantToken internal token;
    HoldfastEscrow internal e;
    bytes internal GUARD_ERROR = abi.encodeWithSelector(ReentrancyGuardTransient.ReentrancyGuardReentrantCall.selector);

    function setUp() public override {
        super.setUp();
        token = new ReentrantToken();
        e = new HoldfastEscrow(address(token));
        _fundAndApprove(address(token), payer, address(e), 100 * AMOUNT);
        // Two open orders the callbacks can target.
        _lockOn(ORDER);
        _lockOn(ORDER_2);
    }

    function _lockOn(bytes32 orderId) private {
        VM.prank(payer);
        e.lock(orderId, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW);
    }

    function _one(bytes32 id) private pure returns (bytes32[] memory ids) {
        ids = new bytes32[](1);
        ids[0] = id;
    }

    function _oneAmount(uint256 amount) private pure returns (uint256[] memory amounts) {
        amounts = new uint256[](1);
        amounts[0] = amount;
    }

    /// @dev Calldata for every state-changing entry point, with arguments that would succeed on their own
    ///      where possible (so only the guard can be what stops them).
    function _entryPoints() private view returns (bytes[] memory calls) {
        calls = new bytes[](12);
        calls[0] = abi.encodeCall(IHoldfastEscrow.lock, (keccak256("re"), payee, 1, address(0), deliverBy, 0));
        calls[1] = abi.encodeCall(
            IHoldfastEscrow.lockWithPermit, (keccak256("re"), payee, 1, address(0), deliverBy, 0, 0, 0, 0, 0)
        );
        calls[2] = abi.encodeCall(
            IHoldfastEscrow.lockWithAuthorization,
            (payer, keccak256("re"), payee, 1, address(0), deliverBy, 0, 0, 0, 0, 0, 0)
        );
        calls[3] = abi.encodeCall(IHoldfastEscrow.deliver, (ORDER_2, EVIDENCE));
        calls[4] = abi.encodeCall(IHoldfastEscrow.release, (ORDER_2, AMOUNT));
        calls[5] = abi.encodeCall(IHoldfastEscrow.refund, (ORDER_2, AMOUNT));
        calls[6] = abi.encodeWithSelector(IHoldfastEscrow.releaseMany.selector, _one(ORDER_2), _oneAmount(AMOUNT));
        calls[7] = abi.encodeWithSelector(IHoldfastEscrow.refundMany.selector, _one(ORDER_2), _oneAmount(AMOUNT));
        calls[8] = abi.encodeCall(IHoldfastEscrow.freeze, (ORDER_2, REASON));
        calls[9] = abi.encodeCall(IHoldfastEscrow.resolve, (ORDER_2, 0));
        calls[10] = abi.encodeCall(IHoldfastEscrow.resolveByTimeout, (ORDER_2));
        calls[11] = abi.encodeCall(IHoldfastEscrow.withdraw, (payee));
    }

    // ------------------------------------------------------------------ during a deposit

    function test_reentrancy_lockDepositReentryIsBlocked() public {
        token.arm(address(e), abi.encodeCall(IHoldfastEscrow.release, (ORDER_2, AMOUNT)), true);
        VM.expectRevert(GUARD_ERROR);
        _lockOn(ORDER_3);
        _assertStatusOn(ORDER_3, IHoldfastEscrow.Status.None);
        _assertStatusOn(ORDER_2, IHoldfastEscrow.Status.Held);
    }

    function test_reentrancy_everyEntryPointIsGuardedDuringLock() public {
        bytes[] memory calls = _entryPoints();
        for (uint256 i; i < calls.length; ++i) {
            token.arm(address(e), calls[i], true);
            VM.expectRevert(GUARD_ERROR);
            _lockOn(ORDER_3);
        }
        assertEq(token.balanceOf(address(e)), 2 * AMOUNT, "escrow balance");
    }

    function test_reentrancy_everyEntryPointIsGuardedDuringLockWithPermit() public {
        bytes[] memory calls = _entryPoints();
        for (uint256 i; i < calls.length; ++i) {
            token.arm(address(e), calls[i], true);
            VM.expectRevert(GUARD_ERROR);
            VM.prank(payer);
            e.lockWithPermit(ORDER_3, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW, 0, 0, 0, 0);
        }
    }

    // ------------------------------------------------------------------ during a payout

    function test_reentrancy_everyEntryPointIsGuardedDuringPayout() public {
        bytes[] memory calls = _entryPoints();
        for (uint256 i; i < calls.length; ++i) {
            bytes32 id = keccak256(abi.encode("payout", i));
            _lockOn(id);
            token.arm(address(e), calls[i], false);
            uint256 before = token.balanceOf(payee);
            VM.prank(payer);
            e.release(id, AMOUNT);
            assertEq(token.callbacks(), i + 1, "callback ran");
            assertFalse(token.lastSuccess(), "reentrant call must fail");
            assertEq(token.lastReturnData(), GUARD_ERROR, "guard error");
            assertEq(token.balanceOf(payee), before + AMOUNT, "payout still made");
        }
        _assertStatusOn(ORDER_2, IHoldfastEscrow.Status.Held);
        assertEq(e.credits(payee), 0, "no credit");
    }

    function test_reentrancy_payoutWhoseHookRevertsIsCredited() public {
        token.arm(address(e), abi.encodeCall(IHoldfastEscrow.refund, (ORDER_2, AMOUNT)), true);
        VM.expectEmit(address(e));
        emit IHoldfastEscrow.PayoutDeferred(ORDER, payee, AMOUNT);
        VM.prank(payer);
        e.release(ORDER, AMOUNT);
        assertEq(e.credits(payee), AMOUNT, "credit");
        _assertStatusOn(ORDER, IHoldfastEscrow.Status.Settled);
        _assertStatusOn(ORDER_2, IHoldfastEscrow.Status.Held);
        // The failed callback reverted with the transfer, so the token is still armed: disarm, then withdraw.
        assertTrue(token.armed(), "still armed");
        token.disarm();
        e.withdraw(payee);
        assertEq(token.balanceOf(payee), AMOUNT, "payee balance");
    }

    function test_reentrancy_orderIsFinalBeforeThePayout() public {
        // Checks-effects-interactions: a hook reading the order during the payout sees it settled.
        token.arm(address(e), abi.encodeCall(IHoldfastEscrow.getOrder, (ORDER)), false);
        VM.prank(payer);
        e.release(ORDER, AMOUNT);
        assertTrue(token.lastSuccess(), "view call allowed");
        (IHoldfastEscrow.Order memory o,) = abi.decode(token.lastReturnData(), (IHoldfastEscrow.Order, address));
        assertEq(uint256(o.status), uint256(IHoldfastEscrow.Status.Settled), "status during payout");
        assertEq(o.remaining, 0, "remaining during payout");
    }

    function test_reentrancy_orderIsRecordedBeforeTheDeposit() public {
        token.arm(address(e), abi.encodeCall(IHoldfastEscrow.getOrder, (ORDER_3)), false);
        _lockOn(ORDER_3);
        (IHoldfastEscrow.Order memory o,) = abi.decode(token.lastReturnData(), (IHoldfastEscrow.Order, address));
        assertEq(uint256(o.status), uint256(IHoldfastEscrow.Status.Held), "status during deposit");
        assertEq(o.remaining, AMOUNT, "remaining during deposit");
    }

    // ------------------------------------------------------------------ during a withdraw

    function test_reentrancy_withdrawReentryIsBlockedAndCreditKept() public {
        token.arm(address(e), abi.encodeCall(IHoldfastEscrow.refund, (ORDER_2, AMOUNT)), true);
        VM.prank(payer);
        e.release(ORDER, AMOUNT); // credited: the hook reverted the payout
        token.arm(address(e), abi.encodeCall(IHoldfastEscrow.withdraw, (payee)), true);
        VM.expectRevert(GUARD_ERROR);
        e.withdraw(payee);
        assertEq(e.credits(payee), AMOUNT, "credit kept");
        assertEq(token.balanceOf(payee), 0, "payee balance");
    }

    function test_reentrancy_everyEntryPointIsGuardedDuringWithdraw() public {
        token.arm(address(e), abi.encodeCall(IHoldfastEscrow.refund, (ORDER_2, AMOUNT)), true);
        VM.prank(payer);
        e.release(ORDER, AMOUNT);
        bytes[] memory calls = _entryPoints();
        for (uint256 i; i < calls.length; ++i) {
            token.arm(address(e), calls[i], true);
            VM.expectRevert(GUARD_ERROR);
            e.withdraw(payee);
        }
        assertEq(e.credits(payee), AMOUNT, "credit kept");
    }

    function _assertStatusOn(bytes32 orderId, IHoldfastEscrow.Status status) private view {
        (IHoldfastEscrow.Order memory o,) = e.getOrder(orderId);
        assertEq(uint256(o.status), uint256(status), "status");
    }
}
