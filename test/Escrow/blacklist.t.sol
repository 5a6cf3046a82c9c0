// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {HoldfastEscrow} from "../../contracts/HoldfastEscrow.sol";
import {IHoldfastEscrow} from "../../contracts/interfaces/IHoldfastEscrow.sol";
import {VM} from "../lib/Vm.sol";
import {BlacklistFalseToken} from "../mocks/BlacklistFalseToken.sol";
import {MockUSDC} from "../mocks/MockUSDC.sol";
import {EscrowTestBase} from "./EscrowTestBase.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @notice End-to-end scenarios with USDC-style blacklisting: a refused payout is credited, the order
///         settles, nothing else is blocked, and the credit is withdrawable once the block is lifted.
contract BlacklistTest is EscrowTestBase {
    address internal payee2;

    function setUp() public override {
        super.setUp();
        payee2 = makeAddr("payee2");
    }

    function _assertSolvent() private view {
        uint256 owed = _remaining(ORDER) + _remaining(ORDER_2) + _remaining(ORDER_3) + escrow.credits(payer)
            + escrow.credits(payee) + escrow.credits(payee2);
        assertEq(usdc.balanceOf(address(escrow)), owed, "escrow balance == remaining + credits");
    }

    function test_blacklist_payeeCreditedOrderSettlesOthersUnaffectedWithdrawAfterUnBlacklist() public {
        _lock(ORDER);
        Terms memory t = _terms(ORDER_2);
        t.payee = payee2;
        _lock(t);
        _lock(ORDER_3);
        usdc.blacklist(payee);

        // 1. the blacklisted payee's payout is credited and the order settles
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.PayoutDeferred(ORDER, payee, AMOUNT);
        VM.prank(payer);
        escrow.release(ORDER, AMOUNT);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        assertEq(escrow.credits(payee), AMOUNT, "credit");
        _assertSolvent();

        // 2. other orders are unaffected: another payee is paid ...
        VM.prank(payer);
        escrow.release(ORDER_2, AMOUNT);
        assertEq(usdc.balanceOf(payee2), AMOUNT, "payee2 paid");
        assertEq(escrow.credits(payee2), 0, "payee2 credit");
        // ... and an order of the same payee can still be refunded to the payer
        uint256 payerBefore = usdc.balanceOf(payer);
        VM.prank(payee);
        escrow.refund(ORDER_3, AMOUNT);
        assertEq(usdc.balanceOf(payer), payerBefore + AMOUNT, "payer refunded");
        _assertSolvent();

        // 3. withdraw reverts while blacklisted, succeeds after unBlacklist
        VM.expectRevert(abi.encodeWithSelector(MockUSDC.AccountBlacklisted.selector, payee));
        escrow.withdraw(payee);
        usdc.unBlacklist(payee);
        VM.expectEmit(address(escrow));
        emit IHoldfastEscrow.Withdrawn(payee, AMOUNT);
        escrow.withdraw(payee);
        assertEq(usdc.balanceOf(payee), AMOUNT, "payee paid");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow empty");
        _assertSolvent();
    }

    function test_blacklist_resolveSplitPaysTheOtherSide() public {
        _lock(ORDER);
        _lock(ORDER_2);
        _deliver(ORDER); // the payer may freeze only a delivered order
        _freeze(ORDER, payer);
        _freeze(ORDER_2, payee);
        uint256 payerBefore = usdc.balanceOf(payer);

        usdc.blacklist(payee);
        VM.prank(arbiter);
        escrow.resolve(ORDER, 600e6);
        assertEq(escrow.credits(payee), 600e6, "payee credited");
        assertEq(usdc.balanceOf(payer), payerBefore + 400e6, "payer paid");
        usdc.unBlacklist(payee);

        usdc.blacklist(payer);
        VM.prank(arbiter);
        escrow.resolve(ORDER_2, 600e6);
        assertEq(escrow.credits(payer), 400e6, "payer credited");
        assertEq(usdc.balanceOf(payee), 600e6, "payee paid");
        _assertSolvent();

        usdc.unBlacklist(payer);
        escrow.withdraw(payer);
        escrow.withdraw(payee);
        assertEq(usdc.balanceOf(payer), payerBefore + 800e6, "payer total");
        assertEq(usdc.balanceOf(payee), 1200e6, "payee total");
        assertEq(usdc.balanceOf(address(escrow)), 0, "escrow empty");
    }

    function test_blacklist_blacklistedPayeeCannotBlockAutoRelease() public {
        _lock(ORDER);
        _deliver(ORDER);
        usdc.blacklist(payee);
        VM.warp(START + DISPUTE_WINDOW);
        VM.prank(stranger);
        escrow.release(ORDER, AMOUNT);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        assertEq(escrow.credits(payee), AMOUNT, "credit");
    }

    function test_blacklist_blacklistedEscrowCreditsEverythingUntilLifted() public {
        _lock(ORDER);
        _lock(ORDER_2);
        usdc.blacklist(address(escrow));
        VM.prank(payer);
        escrow.release(ORDER, AMOUNT);
        VM.prank(payee);
        escrow.refund(ORDER_2, AMOUNT);
        assertEq(escrow.credits(payee), AMOUNT, "payee credit");
        assertEq(escrow.credits(payer), AMOUNT, "payer credit");
        _assertSolvent();
        usdc.unBlacklist(address(escrow));
        escrow.withdraw(payee);
        escrow.withdraw(payer);
        assertEq(usdc.balanceOf(payee), AMOUNT, "payee paid");
        assertEq(usdc.balanceOf(payer), FUNDS - AMOUNT, "payer got ORDER_2 back");
    }

    function testFuzz_blacklist_anyPartialReleaseToBlacklistedPayeeIsCredited(uint256 a, uint256 b) public {
        a = bound(a, 1, AMOUNT - 1);
        b = bound(b, 1, AMOUNT - a);
        _lock(ORDER);
        usdc.blacklist(payee);
        VM.startPrank(payer);
        escrow.release(ORDER, a);
        escrow.release(ORDER, b);
        VM.stopPrank();
        assertEq(escrow.credits(payee), a + b, "credit");
        assertEq(_remaining(ORDER), AMOUNT - a - b, "remaining");
        _assertSolvent();
    }
}

/// @notice The same guarantees with a token whose blacklist makes transfers return false.
contract BlacklistFalseReturnTest is EscrowTestBase {
    BlacklistFalseToken internal token;
    HoldfastEscrow internal e;

    function setUp() public override {
        super.setUp();
        token = new BlacklistFalseToken();
        e = new HoldfastEscrow(address(token));
        _fundAndApprove(address(token), payer, address(e), 10 * AMOUNT);
    }

    function test_blacklistFalse_lockFromBlacklistedPayerReverts() public {
        token.blacklist(payer);
        VM.expectRevert(abi.encodeWithSelector(SafeERC20.SafeERC20FailedOperation.selector, address(token)));
        VM.prank(payer);
        e.lock(ORDER, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW);
    }

    function test_blacklistFalse_resolveSplitCreditsBlacklistedSidePaysOther() public {
        VM.prank(payer);
        e.lock(ORDER, payee, AMOUNT, arbiter, deliverBy, DISPUTE_WINDOW);
        VM.prank(payee);
        e.freeze(ORDER, REASON);
        token.blacklist(payee);
        VM.expectEmit(address(e));
        emit IHoldfastEscrow.PayoutDeferred(ORDER, payee, 300e6);
        VM.prank(arbiter);
        e.resolve(ORDER, 300e6);
        assertEq(e.credits(payee), 300e6, "payee credit");
        assertEq(token.balanceOf(payer), 9 * AMOUNT + 700e6, "payer paid");
        assertEq(token.balanceOf(address(e)), 300e6, "escrow keeps the credit");

        VM.expectRevert(abi.encodeWithSelector(SafeERC20.SafeERC20FailedOperation.selector, address(token)));
        e.withdraw(payee);
        token.unBlacklist(payee);
        e.withdraw(payee);
        assertEq(token.balanceOf(payee), 300e6, "payee paid");
    }
}
