// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {HoldfastEscrow} from "../../contracts/HoldfastEscrow.sol";
import {IHoldfastEscrow} from "../../contracts/interfaces/IHoldfastEscrow.sol";
import {InvariantTest} from "../lib/InvariantTest.sol";
import {VM} from "../lib/Vm.sol";
import {console} from "../lib/console.sol";
import {MockUSDC} from "../mocks/MockUSDC.sol";
import {EscrowHandler} from "./EscrowHandler.sol";

/// @notice Stateful fuzzing of HoldfastEscrow through {EscrowHandler}.
contract EscrowInvariants is InvariantTest {
    MockUSDC internal usdc;
    HoldfastEscrow internal escrow;
    EscrowHandler internal handler;

    function setUp() public {
        VM.warp(1_700_000_000);
        usdc = new MockUSDC();
        escrow = new HoldfastEscrow(address(usdc));
        handler = new EscrowHandler(escrow, usdc);

        // Three orders to start from (actor0 → actor1, arbiter actor2), one per lock method.
        handler.lock(0, 0, 1, 100e6, 7 days, 1 days, 0);
        handler.lock(0, 0, 1, 200e6, 7 days, 1 days, 1);
        handler.lock(0, 0, 1, 300e6, 7 days, 1 days, 2);

        targetContract(address(handler));
        bytes4[] memory selectors = new bytes4[](13);
        selectors[0] = EscrowHandler.lock.selector;
        selectors[1] = EscrowHandler.deliver.selector;
        selectors[2] = EscrowHandler.release.selector;
        selectors[3] = EscrowHandler.refund.selector;
        selectors[4] = EscrowHandler.batch.selector;
        selectors[5] = EscrowHandler.freeze.selector;
        selectors[6] = EscrowHandler.resolve.selector;
        selectors[7] = EscrowHandler.resolveByTimeout.selector;
        selectors[8] = EscrowHandler.withdraw.selector;
        selectors[9] = EscrowHandler.toggleBlacklist.selector;
        selectors[10] = EscrowHandler.warp.selector;
        selectors[11] = EscrowHandler.warpToDeadline.selector;
        selectors[12] = EscrowHandler.lock.selector; // twice: new orders keep the other actions busy
        targetSelector(FuzzSelector(address(handler), selectors));
    }

    // ------------------------------------------------------------------ invariants

    /// @notice The escrow holds exactly what it owes: every order's remainder plus every credit.
    function invariant_escrowBalanceEqualsRemainingPlusCredits() public view {
        uint256 owed;
        for (uint256 i; i < handler.orderCount(); ++i) {
            (IHoldfastEscrow.Order memory o,) = escrow.getOrder(handler.orderIdAt(i));
            owed += o.remaining;
        }
        address[] memory actors = handler.actors();
        for (uint256 i; i < actors.length; ++i) {
            owed += escrow.credits(actors[i]);
        }
        assertEq(usdc.balanceOf(address(escrow)), owed, "escrow balance != remaining + credits");
    }

    /// @notice No order pays out (released + refunded, transferred or credited) more than it locked; what
    ///         it paid plus what remains is exactly what it locked.
    function invariant_noOrderPaysOutMoreThanItLocked() public view {
        uint256 paid;
        for (uint256 i; i < handler.orderCount(); ++i) {
            bytes32 id = handler.orderIdAt(i);
            EscrowHandler.OrderGhost memory g = handler.ghost(id);
            (IHoldfastEscrow.Order memory o,) = escrow.getOrder(id);
            assertLe(g.paidToPayer + g.paidToPayee, g.locked, "order paid out more than it locked");
            assertEq(g.paidToPayer + g.paidToPayee + o.remaining, g.locked, "paid + remaining != locked");
            paid += g.paidToPayer + g.paidToPayee;
        }
        assertEq(paid, handler.totalPaidOut(), "ghost total paid out");
    }

    /// @notice A settled order never changes again.
    function invariant_settledOrdersNeverChange() public view {
        for (uint256 i; i < handler.orderCount(); ++i) {
            bytes32 id = handler.orderIdAt(i);
            EscrowHandler.OrderGhost memory g = handler.ghost(id);
            (IHoldfastEscrow.Order memory o,) = escrow.getOrder(id);
            if (g.settled) {
                assertEq(handler.orderHash(id), g.settledSnapshot, "settled order changed");
                assertEq(uint256(o.status), uint256(IHoldfastEscrow.Status.Settled), "settled status");
            } else {
                assertTrue(o.status != IHoldfastEscrow.Status.Settled, "settled order without snapshot");
            }
        }
    }

    /// @notice An order's funds only ever reach its payer or payee (measured per call from every actor's
    ///         balance + credit), and no token ever leaves the set {actors, escrow}.
    function invariant_fundsOnlyReachPayerOrPayee() public view {
        if (handler.leaks() != 0) revert(string.concat("leak: ", handler.lastLeak()));
        address[] memory actors = handler.actors();
        uint256 held = usdc.balanceOf(address(escrow));
        for (uint256 i; i < actors.length; ++i) {
            held += usdc.balanceOf(actors[i]);
        }
        assertEq(held, usdc.totalSupply(), "tokens outside actors and escrow");
    }

    /// @notice Every call succeeded or failed exactly as the reference model predicts, with the predicted
    ///         state and payouts.
    function invariant_escrowMatchesModel() public view {
        if (handler.mismatches() != 0) revert(string.concat("model mismatch: ", handler.lastMismatch()));
    }

    /// @notice Ghost totals: locked == paid out + remaining, and credits + withdrawn never exceed payouts.
    function invariant_ghostTotalsAddUp() public view {
        uint256 remaining;
        for (uint256 i; i < handler.orderCount(); ++i) {
            (IHoldfastEscrow.Order memory o,) = escrow.getOrder(handler.orderIdAt(i));
            remaining += o.remaining;
        }
        assertEq(handler.totalLocked(), handler.totalPaidOut() + remaining, "locked != paid out + remaining");
        address[] memory actors = handler.actors();
        uint256 credits;
        for (uint256 i; i < actors.length; ++i) {
            credits += escrow.credits(actors[i]);
        }
        assertLe(credits + handler.totalWithdrawn(), handler.totalPaidOut(), "credits exceed payouts");
    }

    /// @notice Printed at the end of every run with -vv: how many calls of each action succeeded / were
    ///         rejected as expected.
    function afterInvariant() public view {
        console.log("orders", handler.orderCount());
        _log("lock", EscrowHandler.lock.selector);
        _log("deliver", EscrowHandler.deliver.selector);
        _log("release", EscrowHandler.release.selector);
        _log("refund", EscrowHandler.refund.selector);
        _log("batch", EscrowHandler.batch.selector);
        _log("freeze", EscrowHandler.freeze.selector);
        _log("resolve", EscrowHandler.resolve.selector);
        _log("resolveByTimeout", EscrowHandler.resolveByTimeout.selector);
        _log("withdraw", EscrowHandler.withdraw.selector);
        _log("toggleBlacklist", EscrowHandler.toggleBlacklist.selector);
        _log("warp", EscrowHandler.warp.selector);
        _log("warpToDeadline", EscrowHandler.warpToDeadline.selector);
    }

    function _log(string memory name, bytes4 selector) private view {
        console.log(string.concat(name, " ok/rejected"), handler.okCount(selector), handler.rejectedCount(selector));
    }

    // ------------------------------------------------------------------ the handler itself

    /// @notice Every handler action can really succeed (a deterministic walk through all of them), and the
    ///         model agrees with the escrow all along.
    function test_handler_everyActionSucceeds() public {
        // setUp: orders 0..2, actor0 → actor1, arbiter actor2. Seeds follow the handler's picking rules:
        // order seeds scan from index (seed >> 8), caller seed 0 = the preferred role, amount seed 0 = all.
        handler.deliver(0, 0, "evidence"); // payee delivers order 0
        handler.release(0, 0, 4); // payer releases 1 unit of order 0
        handler.refund(0, 0, 4); // payee refunds 1 unit of order 0
        handler.deliver(1 << 8, 0, "evidence"); // payee delivers order 1
        handler.freeze(1 << 8, 0, "reason"); // payer freezes order 1 (delivered: the payer may)
        handler.resolve(0, 0, 5); // arbiter: all of order 1 to the payer (toPayee seed 5)
        handler.freeze(2 << 8, 0, "reason"); // payee freezes order 2 (undelivered: only the payee may)
        handler.warp(31 days << 3); // past the freeze timeout
        handler.resolveByTimeout(0, 0); // order 2: refund to the payer
        handler.release(0, 3 + (3 << 8), 0); // actor3 auto-releases order 0's remainder

        handler.toggleBlacklist(1); // payee blacklisted
        handler.lock(0, 0, 1, 50e6, 7 days, 1 days, 0); // order 3
        handler.lock(0, 0, 1, 60e6, 7 days, 1 days, 0); // order 4
        handler.batch(3 << 8, 4 << 8, 0, 0, false); // payer releases both: credited to the blacklisted payee
        handler.withdraw(1, 0); // rejected: still blacklisted
        handler.toggleBlacklist(1);
        handler.withdraw(1, 0); // paid
        handler.lock(0, 0, 1, 70e6, 7 days, 1 days, 0); // order 5
        handler.lock(0, 0, 1, 80e6, 7 days, 1 days, 0); // order 6
        handler.batch(5 << 8, 6 << 8, 0, 0, true); // payee refunds both
        handler.lock(0, 0, 1, 90e6, 7 days, 1 days, 0); // order 7
        handler.warpToDeadline(7, 2); // order 7's deliverBy + 1

        bytes4[12] memory actions = [
            EscrowHandler.lock.selector,
            EscrowHandler.deliver.selector,
            EscrowHandler.release.selector,
            EscrowHandler.refund.selector,
            EscrowHandler.batch.selector,
            EscrowHandler.freeze.selector,
            EscrowHandler.resolve.selector,
            EscrowHandler.resolveByTimeout.selector,
            EscrowHandler.withdraw.selector,
            EscrowHandler.toggleBlacklist.selector,
            EscrowHandler.warp.selector,
            EscrowHandler.warpToDeadline.selector
        ];
        for (uint256 i; i < actions.length; ++i) {
            assertGt(handler.okCount(actions[i]), 0, string.concat("action never succeeded: #", VM.toString(i)));
            if (actions[i] != EscrowHandler.withdraw.selector) {
                assertEq(handler.rejectedCount(actions[i]), 0, string.concat("unexpected rejection: #", VM.toString(i)));
            }
        }
        assertEq(handler.rejectedCount(EscrowHandler.withdraw.selector), 1, "withdraw rejected while blacklisted");
        assertEq(handler.okCount(EscrowHandler.lock.selector), 8, "locks");
        assertEq(handler.mismatches(), 0, handler.lastMismatch());
        assertEq(handler.leaks(), 0, handler.lastLeak());
        assertEq(handler.orderCount(), 8, "orders");
        invariant_escrowBalanceEqualsRemainingPlusCredits();
        invariant_noOrderPaysOutMoreThanItLocked();
        invariant_settledOrdersNeverChange();
        invariant_fundsOnlyReachPayerOrPayee();
        invariant_ghostTotalsAddUp();
    }
}
