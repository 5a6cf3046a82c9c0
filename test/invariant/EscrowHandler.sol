// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {HoldfastEscrow} from "../../contracts/HoldfastEscrow.sol";
import {IHoldfastEscrow} from "../../contracts/interfaces/IHoldfastEscrow.sol";
import {Test} from "../lib/Test.sol";
import {VM} from "../lib/Vm.sol";
import {MockUSDC} from "../mocks/MockUSDC.sol";

/// @title EscrowHandler
/// @notice Drives random sequences of lock (three ways) / deliver / release / refund / releaseMany /
///         refundMany / freeze / resolve / resolveByTimeout / withdraw / blacklist / time warps against one
///         escrow, from a small pool of actors who are payers, payees, arbiters and strangers of each other's
///         orders. Every call is made with try/catch (the handler never reverts) and checked against a
///         reference model of the rules: a call that succeeds when the model says it must fail (or the
///         reverse), or that leaves a different state or moves funds differently than the model predicts,
///         is counted in `mismatches`. Each order's payouts are measured from balance + credit deltas of all
///         actors, so funds reaching anyone but the order's payer or payee are counted in `leaks`.
contract EscrowHandler is Test {
    HoldfastEscrow public immutable escrow;
    MockUSDC public immutable usdc;

    uint256 public constant ACTORS = 6;
    uint256 public constant MAX_AMOUNT = 1_000_000e6;

    bytes32 private constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");
    bytes32 private constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );

    /// @dev Status masks for picking orders: bit i set = Status(i) matches.
    uint256 private constant HELD = 2 ** uint256(IHoldfastEscrow.Status.Held);
    uint256 private constant DELIVERED = 2 ** uint256(IHoldfastEscrow.Status.Delivered);
    uint256 private constant FROZEN = 2 ** uint256(IHoldfastEscrow.Status.Frozen);
    uint8 private constant PAYER = 0;
    uint8 private constant PAYEE = 1;
    uint8 private constant ARBITER = 2;

    address[] internal _actors;
    uint256[] internal _keys;

    /// @notice Per-order ghost accounting; payouts count both transfers and credits.
    struct OrderGhost {
        address payer;
        address payee;
        address arbiter;
        uint256 locked;
        uint256 paidToPayer;
        uint256 paidToPayee;
        bool settled;
        bytes32 settledSnapshot;
    }

    bytes32[] internal _orderIds;
    mapping(bytes32 orderId => OrderGhost) internal _ghost;

    uint256 public currentTime;
    uint256 private _idCounter;

    // ------------------------------------------------------------------ ghost totals and counters

    uint256 public totalLocked;
    uint256 public totalPaidOut; // to payers and payees, transferred or credited
    uint256 public totalCredited;
    uint256 public totalWithdrawn;
    uint256 public mismatches;
    string public lastMismatch;
    uint256 public leaks;
    string public lastLeak;

    /// @notice Calls per action that succeeded / were rejected (as the model expected).
    mapping(bytes4 action => uint256) public okCount;
    mapping(bytes4 action => uint256) public rejectedCount;

    constructor(HoldfastEscrow escrow_, MockUSDC usdc_) {
        escrow = escrow_;
        usdc = usdc_;
        for (uint256 i; i < ACTORS; ++i) {
            (address a, uint256 k) = makeAddrAndKey(string.concat("actor", VM.toString(i)));
            _actors.push(a);
            _keys.push(k);
        }
        currentTime = block.timestamp;
    }

    // ================================================================== views for the invariants

    function actors() external view returns (address[] memory) {
        return _actors;
    }

    function orderCount() external view returns (uint256) {
        return _orderIds.length;
    }

    function orderIdAt(uint256 i) external view returns (bytes32) {
        return _orderIds[i];
    }

    function ghost(bytes32 orderId) external view returns (OrderGhost memory) {
        return _ghost[orderId];
    }

    // ================================================================== actions: locking

    struct LockArgs {
        uint256 payerIndex;
        bytes32 orderId;
        address payer;
        address payee;
        uint256 amount;
        address arbiter;
        uint64 deliverBy;
        uint32 window;
    }

    /// @notice Lock a new order (via lock, lockWithPermit or lockWithAuthorization) between random actors;
    ///         sometimes reuses an existing order id, which must fail.
    function lock(
        uint256 payerSeed,
        uint256 payeeSeed,
        uint256 arbiterSeed,
        uint256 amount,
        uint256 period,
        uint32 window,
        uint256 methodSeed
    ) external {
        VM.warp(currentTime);
        LockArgs memory a = _lockArgs(payerSeed, payeeSeed, arbiterSeed, methodSeed);
        a.amount = bound(amount, 1, MAX_AMOUNT);
        // Mostly realistic periods (the fuzzer favours 0 and tiny values, which bound() would keep tiny),
        // sometimes very short ones to hit the edges.
        uint256 deliverIn = period % 8 == 7 ? bound(period >> 3, 1, 1 hours) : 1 hours + (period >> 3) % 30 days;
        // forge-lint: disable-next-line(unsafe-typecast)
        a.deliverBy = uint64(currentTime + deliverIn);
        a.window = uint32(window % 4 == 3 ? bound(window >> 2, 0, 1 hours) : 1 hours + (window >> 2) % 20 days);

        _mint(a.payer, a.amount);
        bool expectOk = _statusOf(a.orderId) == IHoldfastEscrow.Status.None && !usdc.isBlacklisted(a.payer);
        int256[] memory before = _held();
        uint256 escrowBefore = usdc.balanceOf(address(escrow));

        bool ok = _lockVia(methodSeed % 3, a);
        if (!_expect(this.lock.selector, ok, expectOk, "lock") || !ok) return;

        _orderIds.push(a.orderId);
        _ghost[a.orderId] = OrderGhost(a.payer, a.payee, a.arbiter, a.amount, 0, 0, false, bytes32(0));
        totalLocked += a.amount;

        _checkOrder(a.orderId, "lock", IHoldfastEscrow.Status.Held, a.amount, a.deliverBy, false);
        int256[] memory delta = _deltas(before);
        for (uint256 i; i < ACTORS; ++i) {
            int256 expected = i == a.payerIndex ? -int256(a.amount) : int256(0);
            if (delta[i] != expected) _leak("lock moved funds of someone other than the payer");
        }
        if (usdc.balanceOf(address(escrow)) != escrowBefore + a.amount) _mismatch("lock: escrow balance");
    }

    /// @dev MockUSDC refuses to mint to a blacklisted account: lift the blacklist for the mint.
    function _mint(address to, uint256 amount) private {
        bool blacklisted = usdc.isBlacklisted(to);
        if (blacklisted) usdc.unBlacklist(to);
        usdc.mint(to, amount);
        if (blacklisted) usdc.blacklist(to);
    }

    function _lockArgs(uint256 payerSeed, uint256 payeeSeed, uint256 arbiterSeed, uint256 methodSeed)
        private
        returns (LockArgs memory a)
    {
        uint256 pi = payerSeed % ACTORS;
        // Three times in four a payer who is not blacklisted (a blacklisted payer's lock must fail).
        if (payerSeed % 4 != 3) {
            for (uint256 k; k < ACTORS && usdc.isBlacklisted(_actors[pi]); ++k) {
                pi = (pi + 1) % ACTORS;
            }
        }
        uint256 qi = (pi + 1 + payeeSeed % (ACTORS - 1)) % ACTORS;
        a.payerIndex = pi;
        a.payer = _actors[pi];
        a.payee = _actors[qi];
        if (arbiterSeed % 4 != 0) {
            uint256 ai = arbiterSeed % ACTORS;
            while (ai == pi || ai == qi) ai = (ai + 1) % ACTORS;
            a.arbiter = _actors[ai];
        }
        if (_orderIds.length != 0 && methodSeed % 10 == 9) {
            a.orderId = _orderIds[(methodSeed / 10) % _orderIds.length];
        } else {
            a.orderId = keccak256(abi.encode("order", ++_idCounter));
        }
    }

    function _lockVia(uint256 method, LockArgs memory a) private returns (bool ok) {
        if (method == 0) {
            VM.prank(a.payer);
            usdc.approve(address(escrow), a.amount);
            VM.prank(a.payer);
            try escrow.lock(a.orderId, a.payee, a.amount, a.arbiter, a.deliverBy, a.window) {
                ok = true;
            } catch {}
        } else if (method == 1) {
            uint256 deadline = currentTime + 1 hours;
            (uint8 v, bytes32 r, bytes32 s) = _signPermit(a, deadline);
            VM.prank(a.payer);
            try escrow.lockWithPermit(
                a.orderId, a.payee, a.amount, a.arbiter, a.deliverBy, a.window, deadline, v, r, s
            ) {
                ok = true;
            } catch {}
        } else {
            uint256 validBefore = currentTime + 1 hours;
            (uint8 v, bytes32 r, bytes32 s) = _signReceive(a, validBefore);
            VM.prank(_actors[(a.payerIndex + 3) % ACTORS]); // any relayer
            try escrow.lockWithAuthorization(
                a.payer, a.orderId, a.payee, a.amount, a.arbiter, a.deliverBy, a.window, 0, validBefore, v, r, s
            ) {
                ok = true;
            } catch {}
        }
    }

    function _signPermit(LockArgs memory a, uint256 deadline) private view returns (uint8 v, bytes32 r, bytes32 s) {
        bytes32 structHash =
            keccak256(abi.encode(PERMIT_TYPEHASH, a.payer, address(escrow), a.amount, usdc.nonces(a.payer), deadline));
        (v, r, s) =
            VM.sign(_keys[a.payerIndex], keccak256(abi.encodePacked("\x19\x01", usdc.DOMAIN_SEPARATOR(), structHash)));
    }

    function _signReceive(LockArgs memory a, uint256 validBefore) private view returns (uint8 v, bytes32 r, bytes32 s) {
        bytes32 nonce = escrow.authorizationNonce(a.orderId, a.payee, a.amount, a.arbiter, a.deliverBy, a.window);
        bytes32 structHash = keccak256(
            abi.encode(RECEIVE_WITH_AUTHORIZATION_TYPEHASH, a.payer, address(escrow), a.amount, 0, validBefore, nonce)
        );
        (v, r, s) =
            VM.sign(_keys[a.payerIndex], keccak256(abi.encodePacked("\x19\x01", usdc.DOMAIN_SEPARATOR(), structHash)));
    }

    // ================================================================== actions: lifecycle

    function deliver(uint256 orderSeed, uint256 callerSeed, bytes32 evidence) external {
        VM.warp(currentTime);
        (bytes32 id, IHoldfastEscrow.Order memory o, address arb) = _pickOrder(orderSeed, HELD, true);
        address caller = _pickCaller(callerSeed, o, arb, PAYEE);
        bool expectOk = o.status == IHoldfastEscrow.Status.Held && caller == o.payee && currentTime <= o.deadline;
        int256[] memory before = _held();
        VM.prank(caller);
        bool ok;
        try escrow.deliver(id, evidence) {
            ok = true;
        } catch {}
        if (!_expect(this.deliver.selector, ok, expectOk, "deliver") || !ok) return;
        _checkOrder(id, "deliver", IHoldfastEscrow.Status.Delivered, o.remaining, currentTime + o.disputeWindow, true);
        _checkNoMovement(before, "deliver");
    }

    function release(uint256 orderSeed, uint256 callerSeed, uint256 amountSeed) external {
        VM.warp(currentTime);
        (bytes32 id, IHoldfastEscrow.Order memory o, address arb) = _pickOrder(orderSeed, HELD | DELIVERED);
        address caller = _pickCaller(callerSeed, o, arb, PAYER);
        uint256 amount = _pickAmount(amountSeed, o.remaining);
        bool expectOk = _releaseAllowed(o, caller, amount);
        int256[] memory before = _held();
        VM.prank(caller);
        bool ok;
        try escrow.release(id, amount) {
            ok = true;
        } catch {}
        if (!_expect(this.release.selector, ok, expectOk, "release") || !ok) return;
        _afterPayment(id, o, before, 0, amount, "release");
    }

    function refund(uint256 orderSeed, uint256 callerSeed, uint256 amountSeed) external {
        VM.warp(currentTime);
        (bytes32 id, IHoldfastEscrow.Order memory o, address arb) = _pickOrder(orderSeed, HELD | DELIVERED);
        address caller = _pickCaller(callerSeed, o, arb, PAYEE);
        uint256 amount = _pickAmount(amountSeed, o.remaining);
        bool expectOk = _refundAllowed(o, caller, amount);
        int256[] memory before = _held();
        VM.prank(caller);
        bool ok;
        try escrow.refund(id, amount) {
            ok = true;
        } catch {}
        if (!_expect(this.refund.selector, ok, expectOk, "refund") || !ok) return;
        _afterPayment(id, o, before, amount, 0, "refund");
    }

    /// @notice releaseMany (or refundMany) over two distinct orders, by one caller.
    function batch(uint256 seedA, uint256 seedB, uint256 callerSeed, uint256 amountSeed, bool isRefund) external {
        VM.warp(currentTime);
        (bytes32 idA, IHoldfastEscrow.Order memory a, address arbA) = _pickOrder(seedA, HELD | DELIVERED);
        (bytes32 idB, IHoldfastEscrow.Order memory b,) = _pickOrder(seedB, HELD | DELIVERED);
        if (idA == idB) return;
        address caller = _pickCaller(callerSeed, a, arbA, isRefund ? PAYEE : PAYER);
        bytes32[] memory ids = new bytes32[](2);
        ids[0] = idA;
        ids[1] = idB;
        uint256[] memory amounts = new uint256[](2);
        amounts[0] = _pickAmount(amountSeed, a.remaining);
        amounts[1] = _pickAmount(amountSeed >> 128, b.remaining);
        bool expectOk = isRefund
            ? _refundAllowed(a, caller, amounts[0]) && _refundAllowed(b, caller, amounts[1])
            : _releaseAllowed(a, caller, amounts[0]) && _releaseAllowed(b, caller, amounts[1]);
        int256[] memory before = _held();
        VM.prank(caller);
        bool ok;
        if (isRefund) {
            try escrow.refundMany(ids, amounts) {
                ok = true;
            } catch {}
        } else {
            try escrow.releaseMany(ids, amounts) {
                ok = true;
            } catch {}
        }
        if (!_expect(this.batch.selector, ok, expectOk, "batch") || !ok) return;

        // Per-order state, and the aggregate movement: only the parties of the two orders gained, by exactly
        // what left the orders.
        for (uint256 k; k < 2; ++k) {
            bytes32 id = ids[k];
            IHoldfastEscrow.Order memory o = k == 0 ? a : b;
            uint256 left = o.remaining - amounts[k];
            _checkOrder(
                id, "batch", left == 0 ? IHoldfastEscrow.Status.Settled : o.status, left, o.deadline, o.delivered
            );
            if (isRefund) _ghost[id].paidToPayer += amounts[k];
            else _ghost[id].paidToPayee += amounts[k];
            totalPaidOut += amounts[k];
            _snapshotIfSettled(id);
        }
        int256[] memory delta = _deltas(before);
        int256 sum;
        for (uint256 i; i < ACTORS; ++i) {
            address x = _actors[i];
            bool party = x == a.payer || x == a.payee || x == b.payer || x == b.payee;
            if (!party && delta[i] != 0) _leak("batch paid a non-party");
            if (delta[i] < 0) _leak("batch took funds from an actor");
            sum += delta[i];
        }
        if (sum != int256(amounts[0] + amounts[1])) _leak("batch: paid total != amounts");
    }

    /// @notice Freeze by a legal caller three times in four: the payee while Held, the payer or the payee
    ///         while Delivered (the payer may not freeze an undelivered order); else any actor.
    function freeze(uint256 orderSeed, uint256 callerSeed, bytes32 reason) external {
        VM.warp(currentTime);
        (bytes32 id, IHoldfastEscrow.Order memory o, address arb) = _pickOrder(orderSeed, HELD | DELIVERED, true);
        bool delivered = o.status == IHoldfastEscrow.Status.Delivered;
        address caller = _pickCaller(callerSeed, o, arb, delivered && (callerSeed >> 128) % 2 == 0 ? PAYER : PAYEE);
        bool legalCaller = caller == o.payee || (caller == o.payer && delivered);
        bool expectOk = _windowOpen(o) && legalCaller && arb != address(0);
        int256[] memory before = _held();
        VM.prank(caller);
        bool ok;
        try escrow.freeze(id, reason) {
            ok = true;
        } catch {}
        if (!_expect(this.freeze.selector, ok, expectOk, "freeze") || !ok) return;
        _checkOrder(id, "freeze", IHoldfastEscrow.Status.Frozen, o.remaining, currentTime + 30 days, o.delivered);
        _checkNoMovement(before, "freeze");
    }

    function resolve(uint256 orderSeed, uint256 callerSeed, uint256 toPayeeSeed) external {
        VM.warp(currentTime);
        (bytes32 id, IHoldfastEscrow.Order memory o, address arb) = _pickOrder(orderSeed, FROZEN);
        address caller = _pickCaller(callerSeed, o, arb, ARBITER);
        // All to the payee, all to the payer, one too many, or a split.
        uint256 r = toPayeeSeed % 8;
        uint256 toPayee =
            r == 7 ? o.remaining + 1 : r == 6 ? o.remaining : r == 5 ? 0 : bound(toPayeeSeed >> 3, 0, o.remaining);
        bool expectOk = o.status == IHoldfastEscrow.Status.Frozen && caller == arb && toPayee <= o.remaining;
        int256[] memory before = _held();
        VM.prank(caller);
        bool ok;
        try escrow.resolve(id, toPayee) {
            ok = true;
        } catch {}
        if (!_expect(this.resolve.selector, ok, expectOk, "resolve") || !ok) return;
        _afterPayment(id, o, before, o.remaining - toPayee, toPayee, "resolve");
    }

    function resolveByTimeout(uint256 orderSeed, uint256 callerSeed) external {
        VM.warp(currentTime);
        (bytes32 id, IHoldfastEscrow.Order memory o, address arb) = _pickOrder(orderSeed, FROZEN);
        // forge-lint: disable-next-line(unsafe-typecast)
        address caller = _pickCaller(callerSeed, o, arb, uint8(callerSeed % 3));
        bool expectOk = o.status == IHoldfastEscrow.Status.Frozen && currentTime >= o.deadline;
        int256[] memory before = _held();
        VM.prank(caller);
        bool ok;
        try escrow.resolveByTimeout(id) {
            ok = true;
        } catch {}
        if (!_expect(this.resolveByTimeout.selector, ok, expectOk, "resolveByTimeout") || !ok) return;
        if (o.delivered) _afterPayment(id, o, before, 0, o.remaining, "resolveByTimeout");
        else _afterPayment(id, o, before, o.remaining, 0, "resolveByTimeout");
    }

    function withdraw(uint256 accountSeed, uint256 callerSeed) external {
        VM.warp(currentTime);
        // Three times in four an actor with a credit (if any), else anyone.
        address account = _actors[accountSeed % ACTORS];
        if (accountSeed % 4 != 3) {
            for (uint256 k; k < ACTORS; ++k) {
                address x = _actors[(accountSeed % ACTORS + k) % ACTORS];
                if (escrow.credits(x) != 0) {
                    account = x;
                    break;
                }
            }
        }
        address caller = _actors[callerSeed % ACTORS];
        uint256 credit = escrow.credits(account);
        uint256 balance = usdc.balanceOf(account);
        bool expectOk = credit != 0 && !usdc.isBlacklisted(account);
        int256[] memory before = _held();
        VM.prank(caller);
        bool ok;
        try escrow.withdraw(account) {
            ok = true;
        } catch {}
        if (!_expect(this.withdraw.selector, ok, expectOk, "withdraw") || !ok) return;
        totalWithdrawn += credit;
        if (escrow.credits(account) != 0) _mismatch("withdraw: credit left");
        if (usdc.balanceOf(account) != balance + credit) _mismatch("withdraw: balance");
        _checkNoMovement(before, "withdraw");
    }

    // ================================================================== actions: environment

    /// @notice Blacklist or un-blacklist an actor at the token (never the escrow); at most two actors are
    ///         blacklisted at a time, so most orders can still be locked.
    function toggleBlacklist(uint256 actorSeed) external {
        address a = _actors[actorSeed % ACTORS];
        if (usdc.isBlacklisted(a)) {
            usdc.unBlacklist(a);
        } else {
            uint256 listed;
            for (uint256 i; i < ACTORS; ++i) {
                if (usdc.isBlacklisted(_actors[i])) ++listed;
            }
            if (listed >= 2) return;
            usdc.blacklist(a);
        }
        okCount[this.toggleBlacklist.selector]++;
    }

    /// @notice Move time forward: usually by up to 2 days, one time in eight by up to 40 days.
    function warp(uint256 seconds_) external {
        currentTime += seconds_ % 8 == 0 ? bound(seconds_ >> 3, 1, 40 days) : bound(seconds_ >> 3, 1, 2 days);
        VM.warp(currentTime);
        okCount[this.warp.selector]++;
    }

    /// @notice Move time to one second before, exactly at, or one second after the current deadline of an
    ///      open order (deliverBy, releasableAt or freeze timeout) that is still ahead, to hit the boundaries.
    function warpToDeadline(uint256 orderSeed, uint256 offsetSeed) external {
        uint256 n = _orderIds.length;
        for (uint256 k; k < n; ++k) {
            IHoldfastEscrow.Order memory o = _orderOf(_orderIds[(orderSeed % n + k) % n]);
            if (o.status == IHoldfastEscrow.Status.Settled || o.deadline <= currentTime) continue;
            uint256 target = uint256(o.deadline) + (offsetSeed % 3) - 1;
            if (target <= currentTime) continue;
            currentTime = target;
            VM.warp(currentTime);
            okCount[this.warpToDeadline.selector]++;
            return;
        }
    }

    // ================================================================== model helpers

    function _releaseAllowed(IHoldfastEscrow.Order memory o, address caller, uint256 amount)
        private
        view
        returns (bool)
    {
        if (o.status != IHoldfastEscrow.Status.Held && o.status != IHoldfastEscrow.Status.Delivered) {
            return false;
        }
        if (caller == o.payer) return amount != 0 && amount <= o.remaining;
        return o.status == IHoldfastEscrow.Status.Delivered && currentTime >= o.deadline && amount == o.remaining;
    }

    function _refundAllowed(IHoldfastEscrow.Order memory o, address caller, uint256 amount)
        private
        view
        returns (bool)
    {
        if (o.status != IHoldfastEscrow.Status.Held && o.status != IHoldfastEscrow.Status.Delivered) {
            return false;
        }
        if (caller == o.payee) return amount != 0 && amount <= o.remaining;
        return o.status == IHoldfastEscrow.Status.Held && currentTime > o.deadline && amount == o.remaining;
    }

    /// @dev After a successful release/refund/resolve/resolveByTimeout on one order: state, and that exactly
    ///      `toPayer` reached the payer and `toPayee` the payee (balance or credit), nobody else gained.
    function _afterPayment(
        bytes32 id,
        IHoldfastEscrow.Order memory o,
        int256[] memory before,
        uint256 toPayer,
        uint256 toPayee,
        string memory what
    ) private {
        uint256 left = o.remaining - toPayer - toPayee;
        bool frozen = o.status == IHoldfastEscrow.Status.Frozen;
        _checkOrder(id, what, left == 0 ? IHoldfastEscrow.Status.Settled : o.status, left, o.deadline, o.delivered);
        if (frozen && left != 0) _mismatch(string.concat(what, ": frozen order not fully settled"));

        int256[] memory delta = _deltas(before);
        for (uint256 i; i < ACTORS; ++i) {
            address x = _actors[i];
            // forge-lint: disable-next-line(unsafe-typecast)
            int256 expected = x == o.payer ? int256(toPayer) : x == o.payee ? int256(toPayee) : int256(0);
            if (delta[i] != expected) {
                if (x == o.payer || x == o.payee) _mismatch(string.concat(what, ": party paid a wrong amount"));
                else _leak(string.concat(what, ": funds reached a non-party"));
            }
        }
        OrderGhost storage g = _ghost[id];
        g.paidToPayer += _positive(delta[_indexOf(o.payer)]);
        g.paidToPayee += _positive(delta[_indexOf(o.payee)]);
        totalPaidOut += toPayer + toPayee;
        _snapshotIfSettled(id);
    }

    function _snapshotIfSettled(bytes32 id) private {
        OrderGhost storage g = _ghost[id];
        if (!g.settled && _statusOf(id) == IHoldfastEscrow.Status.Settled) {
            g.settled = true;
            g.settledSnapshot = orderHash(id);
        }
    }

    function _checkOrder(
        bytes32 id,
        string memory what,
        IHoldfastEscrow.Status status,
        uint256 remaining,
        uint256 deadline,
        bool delivered
    ) private {
        IHoldfastEscrow.Order memory o = _orderOf(id);
        OrderGhost storage g = _ghost[id];
        if (o.status != status) _mismatch(string.concat(what, ": status"));
        if (o.remaining != remaining) _mismatch(string.concat(what, ": remaining"));
        if (o.deadline != deadline) _mismatch(string.concat(what, ": deadline"));
        if (o.delivered != delivered) _mismatch(string.concat(what, ": delivered"));
        if (o.payer != g.payer || o.payee != g.payee) _mismatch(string.concat(what, ": parties"));
        if (o.hasArbiter != (g.arbiter != address(0))) _mismatch(string.concat(what, ": hasArbiter"));
        if (_arbiterOf(id) != g.arbiter) _mismatch(string.concat(what, ": arbiter"));
    }

    function _checkNoMovement(int256[] memory before, string memory what) private {
        int256[] memory delta = _deltas(before);
        for (uint256 i; i < ACTORS; ++i) {
            if (delta[i] != 0) _leak(string.concat(what, ": moved funds"));
        }
    }

    function _expect(bytes4 action, bool ok, bool expectOk, string memory what) private returns (bool) {
        if (ok != expectOk) {
            _mismatch(string.concat(what, ok ? ": succeeded, model says it must fail" : ": failed, model says ok"));
            return false;
        }
        if (ok) okCount[action]++;
        else rejectedCount[action]++;
        return true;
    }

    function _mismatch(string memory what) private {
        ++mismatches;
        lastMismatch = what;
    }

    function _leak(string memory what) private {
        ++leaks;
        lastLeak = what;
    }

    // ================================================================== picking

    /// @dev Three times in four an order whose status is in `statusMask` (scanning from a random one), else
    ///      (or if none matches) any order, and one time in sixteen an unknown id (status None).
    function _pickOrder(uint256 seed, uint256 statusMask)
        private
        view
        returns (bytes32 id, IHoldfastEscrow.Order memory o, address arbiter)
    {
        return _pickOrder(seed, statusMask, false);
    }

    /// @dev As above; with `openOnly`, only orders whose deliver/freeze window is still open match.
    function _pickOrder(uint256 seed, uint256 statusMask, bool openOnly)
        private
        view
        returns (bytes32 id, IHoldfastEscrow.Order memory o, address arbiter)
    {
        uint256 n = _orderIds.length;
        if (n == 0 || seed % 16 == 15) {
            id = keccak256(abi.encode("unknown", seed));
        } else {
            uint256 start = (seed >> 8) % n;
            id = _orderIds[start];
            if (seed % 4 != 3) {
                for (uint256 k; k < n; ++k) {
                    bytes32 candidate = _orderIds[(start + k) % n];
                    IHoldfastEscrow.Order memory c = _orderOf(candidate);
                    if (statusMask & (2 ** uint256(c.status)) != 0 && (!openOnly || _windowOpen(c))) {
                        id = candidate;
                        break;
                    }
                }
            }
        }
        (o, arbiter) = escrow.getOrder(id);
    }

    /// @dev Held until deliverBy (inclusive), Delivered until releasableAt (exclusive).
    function _windowOpen(IHoldfastEscrow.Order memory o) private view returns (bool) {
        if (o.status == IHoldfastEscrow.Status.Held) return currentTime <= o.deadline;
        return o.status == IHoldfastEscrow.Status.Delivered && currentTime < o.deadline;
    }

    /// @dev Three times in four the order's `role` (payer, payee or arbiter), else any actor.
    function _pickCaller(uint256 seed, IHoldfastEscrow.Order memory o, address arbiter, uint8 role)
        private
        view
        returns (address)
    {
        if (seed % 4 != 3 && o.payer != address(0)) {
            if (role == PAYER) return o.payer;
            if (role == PAYEE) return o.payee;
            if (arbiter != address(0)) return arbiter;
        }
        return _actors[(seed >> 8) % ACTORS];
    }

    /// @dev The whole remainder (1/2), a valid part (1/4), zero (1/8), or one too many (1/8).
    function _pickAmount(uint256 seed, uint256 remaining) private pure returns (uint256) {
        uint256 r = seed % 8;
        if (r < 4) return remaining;
        if (r == 6) return 0;
        if (r == 7) return remaining + 1;
        return remaining == 0 ? 0 : 1 + (seed >> 8) % remaining;
    }

    // ================================================================== state reading

    /// @dev balance + credit of every actor.
    function _held() private view returns (int256[] memory held) {
        held = new int256[](ACTORS);
        for (uint256 i; i < ACTORS; ++i) {
            held[i] = int256(usdc.balanceOf(_actors[i]) + escrow.credits(_actors[i]));
        }
    }

    function _deltas(int256[] memory before) private view returns (int256[] memory delta) {
        delta = _held();
        for (uint256 i; i < ACTORS; ++i) {
            delta[i] -= before[i];
        }
    }

    function _positive(int256 x) private pure returns (uint256) {
        // forge-lint: disable-next-line(unsafe-typecast)
        return x > 0 ? uint256(x) : 0;
    }

    function _indexOf(address a) private view returns (uint256) {
        for (uint256 i; i < ACTORS; ++i) {
            if (_actors[i] == a) return i;
        }
        revert("EscrowHandler: not an actor");
    }

    function _orderOf(bytes32 id) private view returns (IHoldfastEscrow.Order memory o) {
        (o,) = escrow.getOrder(id);
    }

    function _arbiterOf(bytes32 id) private view returns (address arbiter) {
        (, arbiter) = escrow.getOrder(id);
    }

    function _statusOf(bytes32 id) private view returns (IHoldfastEscrow.Status) {
        return _orderOf(id).status;
    }

    /// @notice The whole stored order (and arbiter) as one hash.
    function orderHash(bytes32 id) public view returns (bytes32) {
        (IHoldfastEscrow.Order memory o, address a) = escrow.getOrder(id);
        return keccak256(abi.encode(o, a));
    }
}
