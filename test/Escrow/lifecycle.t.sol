// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IHoldfastEscrow} from "../../contracts/interfaces/IHoldfastEscrow.sol";
import {VM} from "../lib/Vm.sol";
import {EscrowTestBase} from "./EscrowTestBase.sol";

/// @notice Every lifecycle path end to end, with exact balances for payer, payee, arbiter and escrow.
contract LifecycleTest is EscrowTestBase {
    uint256 internal payerStart;

    function setUp() public override {
        super.setUp();
        payerStart = usdc.balanceOf(payer);
    }

    function _assertBalances(uint256 payerGot, uint256 payeeGot, uint256 inEscrow) private view {
        assertEq(usdc.balanceOf(payer), payerStart - AMOUNT + payerGot, "payer");
        assertEq(usdc.balanceOf(payee), payeeGot, "payee");
        assertEq(usdc.balanceOf(arbiter), 0, "arbiter");
        assertEq(usdc.balanceOf(address(escrow)), inEscrow, "escrow");
    }

    function test_lifecycle_deliverThenAutoRelease() public {
        _lock(ORDER);
        VM.warp(START + 2 days);
        _deliver(ORDER);
        VM.warp(START + 2 days + DISPUTE_WINDOW);
        VM.prank(stranger);
        escrow.release(ORDER, AMOUNT);
        _assertBalances(0, AMOUNT, 0);
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
    }

    function test_lifecycle_deliverThenPayerReleasesEarly() public {
        _lock(ORDER);
        _deliver(ORDER);
        VM.prank(payer);
        escrow.release(ORDER, AMOUNT);
        _assertBalances(0, AMOUNT, 0);
    }

    function test_lifecycle_noDeliveryThenExpiryRefund() public {
        _lock(ORDER);
        VM.warp(uint256(deliverBy) + 1);
        VM.prank(stranger);
        escrow.refund(ORDER, AMOUNT);
        _assertBalances(AMOUNT, 0, 0);
    }

    function test_lifecycle_payeeCancelsWithRefund() public {
        _lock(ORDER);
        VM.prank(payee);
        escrow.refund(ORDER, AMOUNT);
        _assertBalances(AMOUNT, 0, 0);
    }

    function test_lifecycle_freezeThenArbiterSplits() public {
        _lock(ORDER);
        _deliver(ORDER);
        _freeze(ORDER, payer);
        VM.prank(arbiter);
        escrow.resolve(ORDER, 700e6);
        _assertBalances(300e6, 700e6, 0);
    }

    function test_lifecycle_deliveredFreezeThenTimeoutPaysPayee() public {
        _lock(ORDER);
        _deliver(ORDER);
        uint256 timeoutAt = _freeze(ORDER, payer);
        VM.warp(timeoutAt);
        escrow.resolveByTimeout(ORDER);
        _assertBalances(0, AMOUNT, 0);
    }

    function test_lifecycle_undeliveredFreezeThenTimeoutRefundsPayer() public {
        _lock(ORDER);
        uint256 timeoutAt = _freeze(ORDER, payee);
        VM.warp(timeoutAt);
        escrow.resolveByTimeout(ORDER);
        _assertBalances(AMOUNT, 0, 0);
    }

    function test_lifecycle_partialPaymentsThenAutoRelease() public {
        _lock(ORDER);
        VM.prank(payer);
        escrow.release(ORDER, 200e6); // milestone
        VM.prank(payee);
        escrow.refund(ORDER, 100e6); // discount
        _deliver(ORDER);
        VM.warp(START + DISPUTE_WINDOW);
        VM.prank(stranger);
        escrow.release(ORDER, 700e6);
        _assertBalances(100e6, 900e6, 0);
    }

    function test_lifecycle_partialPaymentsThenFreezeThenResolve() public {
        _lock(ORDER);
        VM.prank(payer);
        escrow.release(ORDER, 200e6);
        _freeze(ORDER, payee);
        VM.prank(arbiter);
        escrow.resolve(ORDER, 400e6);
        _assertBalances(400e6, 600e6, 0);
    }

    function test_lifecycle_settledOrderIsFinalForEveryEntryPoint() public {
        _lock(ORDER);
        VM.prank(payer);
        escrow.release(ORDER, AMOUNT);
        bytes32 snapshot = _orderHash(ORDER);
        bytes memory settled =
            abi.encodeWithSelector(IHoldfastEscrow.InvalidStatus.selector, ORDER, IHoldfastEscrow.Status.Settled);

        VM.warp(START + 365 days);
        VM.expectRevert(settled);
        VM.prank(payee);
        escrow.deliver(ORDER, EVIDENCE);
        VM.expectRevert(settled);
        VM.prank(payer);
        escrow.release(ORDER, 1);
        VM.expectRevert(settled);
        VM.prank(payee);
        escrow.refund(ORDER, 1);
        VM.expectRevert(settled);
        VM.prank(payer);
        escrow.freeze(ORDER, REASON);
        VM.expectRevert(settled);
        VM.prank(arbiter);
        escrow.resolve(ORDER, 0);
        VM.expectRevert(settled);
        escrow.resolveByTimeout(ORDER);
        VM.expectRevert(
            abi.encodeWithSelector(IHoldfastEscrow.OrderExists.selector, ORDER, IHoldfastEscrow.Status.Settled)
        );
        _lock(ORDER);
        assertEq(_orderHash(ORDER), snapshot, "settled order unchanged");
        _assertBalances(0, AMOUNT, 0);
    }

    function testFuzz_lifecycle_fundsAreConserved(uint256 released, uint256 refunded, uint256 toPayee, uint8 path)
        public
    {
        _lock(ORDER);
        released = bound(released, 0, AMOUNT - 1);
        refunded = bound(refunded, 0, AMOUNT - 1 - released);
        if (released != 0) {
            VM.prank(payer);
            escrow.release(ORDER, released);
        }
        if (refunded != 0) {
            VM.prank(payee);
            escrow.refund(ORDER, refunded);
        }
        uint256 left = AMOUNT - released - refunded;
        uint256 payerGot = refunded;
        uint256 payeeGot = released;
        path = uint8(bound(path, 0, 4));
        if (path == 0) {
            _deliver(ORDER);
            VM.warp(START + DISPUTE_WINDOW);
            escrow.release(ORDER, left);
            payeeGot += left;
        } else if (path == 1) {
            VM.warp(uint256(deliverBy) + 1);
            escrow.refund(ORDER, left);
            payerGot += left;
        } else if (path == 2) {
            _deliver(ORDER); // the payer may freeze only a delivered order
            _freeze(ORDER, payer);
            toPayee = bound(toPayee, 0, left);
            VM.prank(arbiter);
            escrow.resolve(ORDER, toPayee);
            payeeGot += toPayee;
            payerGot += left - toPayee;
        } else if (path == 3) {
            uint256 timeoutAt = _freeze(ORDER, payee);
            VM.warp(timeoutAt);
            escrow.resolveByTimeout(ORDER);
            payerGot += left;
        } else {
            _deliver(ORDER);
            uint256 timeoutAt = _freeze(ORDER, payer);
            VM.warp(timeoutAt);
            escrow.resolveByTimeout(ORDER);
            payeeGot += left;
        }
        _assertStatus(ORDER, IHoldfastEscrow.Status.Settled);
        assertEq(payerGot + payeeGot, AMOUNT, "conservation");
        _assertBalances(payerGot, payeeGot, 0);
    }
}
