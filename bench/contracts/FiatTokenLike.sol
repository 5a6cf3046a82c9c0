// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

// Benchmark-only approximation of Circle's USDC (FiatTokenProxy + FiatTokenV2_2), written for Holdfast's gas
// benchmark because USDC's bytecode is not available offline. It reproduces what decides the gas of a call
// from the escrow: the proxy's two storage reads and DELEGATECALL, the storage layout and packing
// (`paused` with the pauser, the blacklist flag in bit 255 of `balanceAndBlacklistStates`), the modifiers
// and their order, the allowance update in transferFrom, the per-call EIP-712 domain separator, and
// signature checks through an external SignatureChecker library (a linked DELEGATECALL, with the
// EXTCODESIZE probe of the signer). See BENCHMARKS.md for how it differs from the real contract.
// Never deploy it outside a benchmark.

/// @title FiatTokenProxyLike
/// @notice AdminUpgradeabilityProxy as used by USDC: zeppelinos storage slots, and every non-admin call pays
///         an SLOAD of the admin slot (the admin may not use the token) and of the implementation slot.
contract FiatTokenProxyLike {
    /// @dev keccak256("org.zeppelinos.proxy.admin")
    bytes32 private constant ADMIN_SLOT = 0x10d6a54a4754c8869d6886b5f5d7fbfa5b4522237ea5c60d11bc4e7a1ff9390b;
    /// @dev keccak256("org.zeppelinos.proxy.implementation")
    bytes32 private constant IMPLEMENTATION_SLOT = 0x7050c9e0f4ca769c69bd3a8ef740bc37934f8e2c036e5a723fd8ee048ed3f8c3;

    event AdminChanged(address previousAdmin, address newAdmin);
    event Upgraded(address implementation);

    /// @param implementationContract The FiatTokenV2_2Like implementation; the deployer becomes the admin.
    constructor(address implementationContract) {
        require(implementationContract.code.length > 0, "Cannot set a proxy implementation to a non-contract address");
        _setImplementation(implementationContract);
        _setAdmin(msg.sender);
    }

    modifier ifAdmin() {
        if (msg.sender == _admin()) {
            _;
        } else {
            _fallback();
        }
    }

    fallback() external payable {
        _fallback();
    }

    receive() external payable {
        _fallback();
    }

    /// @notice The admin (admin only; anyone else is forwarded to the implementation).
    function admin() external ifAdmin returns (address) {
        return _admin();
    }

    /// @notice The implementation (admin only).
    function implementation() external ifAdmin returns (address) {
        return _implementation();
    }

    /// @notice Change the admin (admin only).
    function changeAdmin(address newAdmin) external ifAdmin {
        require(newAdmin != address(0), "Cannot change the admin of a proxy to the zero address");
        emit AdminChanged(_admin(), newAdmin);
        _setAdmin(newAdmin);
    }

    /// @notice Upgrade (admin only).
    function upgradeTo(address newImplementation) external ifAdmin {
        require(newImplementation.code.length > 0, "Cannot set a proxy implementation to a non-contract address");
        _setImplementation(newImplementation);
        emit Upgraded(newImplementation);
    }

    function _fallback() internal {
        require(msg.sender != _admin(), "Cannot call fallback function from the proxy admin");
        address impl = _implementation();
        assembly ("memory-safe") {
            calldatacopy(0, 0, calldatasize())
            let result := delegatecall(gas(), impl, 0, calldatasize(), 0, 0)
            returndatacopy(0, 0, returndatasize())
            switch result
            case 0 { revert(0, returndatasize()) }
            default { return(0, returndatasize()) }
        }
    }

    function _admin() internal view returns (address adm) {
        bytes32 slot = ADMIN_SLOT;
        assembly ("memory-safe") {
            adm := sload(slot)
        }
    }

    function _implementation() internal view returns (address impl) {
        bytes32 slot = IMPLEMENTATION_SLOT;
        assembly ("memory-safe") {
            impl := sload(slot)
        }
    }

    function _setAdmin(address newAdmin) internal {
        bytes32 slot = ADMIN_SLOT;
        assembly ("memory-safe") {
            sstore(slot, newAdmin)
        }
    }

    function _setImplementation(address newImplementation) internal {
        bytes32 slot = IMPLEMENTATION_SLOT;
        assembly ("memory-safe") {
            sstore(slot, newImplementation)
        }
    }
}

/// @title SignatureCheckerLike
/// @notice USDC's SignatureChecker: an external library (linked, called with DELEGATECALL) that checks an
///         ECDSA signature for an account without code and asks ERC-1271 otherwise.
library SignatureCheckerLike {
    /// @notice Whether `signature` is `signer`'s signature of `digest` (ECDSA for EOAs, ERC-1271 for contracts).
    function isValidSignatureNow(address signer, bytes32 digest, bytes memory signature) external view returns (bool) {
        if (signer.code.length == 0) return _recover(digest, signature) == signer;
        (bool success, bytes memory result) = signer.staticcall(abi.encodeWithSelector(0x1626ba7e, digest, signature));
        return success && result.length >= 32 && abi.decode(result, (bytes32)) == bytes32(bytes4(0x1626ba7e));
    }

    /// @dev Circle's ECRecover: length, low-s and v checks, then the precompile; a zero signer reverts.
    function _recover(bytes32 digest, bytes memory signature) private pure returns (address signer) {
        require(signature.length == 65, "ECRecover: invalid signature length");
        bytes32 r;
        bytes32 s;
        uint8 v;
        assembly ("memory-safe") {
            r := mload(add(signature, 0x20))
            s := mload(add(signature, 0x40))
            v := byte(0, mload(add(signature, 0x60)))
        }
        require(
            uint256(s) <= 0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0,
            "ECRecover: invalid signature 's' value"
        );
        require(v == 27 || v == 28, "ECRecover: invalid signature 'v' value");
        signer = ecrecover(digest, v, r, s);
        require(signer != address(0), "ECRecover: invalid signature");
    }
}

/// @title FiatTokenV2_2Like
/// @notice The implementation behind {FiatTokenProxyLike}. State variables are declared in USDC's order
///         (Ownable, Pausable, Blacklistable, FiatTokenV1, Rescuable, EIP712Domain, EIP3009, EIP2612,
///         FiatTokenV2), so slots and packing match.
contract FiatTokenV2_2Like {
    // ------------------------------------------------------------------ storage (USDC's layout)

    address private _owner; // slot 0
    /// @notice May pause; packed with {paused} in one slot, as in USDC.
    address public pauser; // slot 1
    /// @notice Whether transfers are paused.
    bool public paused; // slot 1
    /// @notice May blacklist.
    address public blacklister; // slot 2
    mapping(address => bool) internal _deprecatedBlacklisted; // slot 3
    /// @notice Token name (also the EIP-712 domain name).
    string public name; // slot 4
    /// @notice Token symbol.
    string public symbol; // slot 5
    /// @notice 6.
    uint8 public decimals; // slot 6
    /// @notice "USD".
    string public currency; // slot 7
    /// @notice Configures minters; packed with `initialized`.
    address public masterMinter; // slot 8
    bool internal initialized; // slot 8
    /// @dev Bit 255: blacklisted; bits 0-254: balance.
    mapping(address => uint256) internal balanceAndBlacklistStates; // slot 9
    mapping(address => mapping(address => uint256)) internal allowed; // slot 10
    uint256 internal totalSupply_; // slot 11
    mapping(address => bool) internal minters; // slot 12
    mapping(address => uint256) internal minterAllowed; // slot 13
    address private _rescuer; // slot 14
    bytes32 internal _DEPRECATED_CACHED_DOMAIN_SEPARATOR; // slot 15
    mapping(address => mapping(bytes32 => bool)) private _authorizationStates; // slot 16
    mapping(address => uint256) private _permitNonces; // slot 17
    uint8 internal _initializedVersion; // slot 18

    // ------------------------------------------------------------------ constants

    /// @notice keccak256("TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)")
    bytes32 public constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH =
        0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267;
    /// @notice keccak256("ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)")
    bytes32 public constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH =
        0xd099cc98ef71107a616c4f0f941f04c322d8e254fe26b3c6668db87aae413de8;
    /// @notice keccak256("CancelAuthorization(address authorizer,bytes32 nonce)")
    bytes32 public constant CANCEL_AUTHORIZATION_TYPEHASH =
        0x158b0a9edf7a828aad02f63cd515c68ef2f50ba807396f6d12842833a1597429;
    /// @notice keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)")
    bytes32 public constant PERMIT_TYPEHASH = 0x6e71edae12b1b97f4d1f60370fef10105fa2faae0126114a169c64845d6126c9;
    /// @dev keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
    bytes32 internal constant EIP712_DOMAIN_TYPEHASH =
        0x8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f;

    // ------------------------------------------------------------------ events

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);
    event Mint(address indexed minter, address indexed to, uint256 amount);
    event MinterConfigured(address indexed minter, uint256 minterAllowedAmount);
    event Pause();
    event Unpause();
    event Blacklisted(address indexed account);
    event UnBlacklisted(address indexed account);
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
    event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);

    // ------------------------------------------------------------------ modifiers

    modifier whenNotPaused() {
        require(!paused, "Pausable: paused");
        _;
    }

    modifier notBlacklisted(address account) {
        require(!_isBlacklisted(account), "Blacklistable: account is blacklisted");
        _;
    }

    modifier onlyOwner() {
        require(msg.sender == _owner, "Ownable: caller is not the owner");
        _;
    }

    // ------------------------------------------------------------------ initialization

    /// @notice V1 initialize plus the V2, V2_1 and V2_2 steps that matter here (name for EIP-712, version 3,
    ///         the token's own address blacklisted as in initializeV2_2).
    function initialize(
        string calldata tokenName,
        string calldata tokenSymbol,
        string calldata tokenCurrency,
        uint8 tokenDecimals,
        address newMasterMinter,
        address newPauser,
        address newBlacklister,
        address newOwner
    ) external {
        require(!initialized, "FiatToken: contract is already initialized");
        require(newMasterMinter != address(0), "FiatToken: new masterMinter is the zero address");
        require(newPauser != address(0), "FiatToken: new pauser is the zero address");
        require(newBlacklister != address(0), "FiatToken: new blacklister is the zero address");
        require(newOwner != address(0), "FiatToken: new owner is the zero address");
        name = tokenName;
        symbol = tokenSymbol;
        currency = tokenCurrency;
        decimals = tokenDecimals;
        masterMinter = newMasterMinter;
        pauser = newPauser;
        blacklister = newBlacklister;
        _owner = newOwner;
        initialized = true;
        _initializedVersion = 3;
        _setBlacklistState(address(this), true);
    }

    // ------------------------------------------------------------------ ERC-20

    /// @notice Total supply.
    function totalSupply() external view returns (uint256) {
        return totalSupply_;
    }

    /// @notice Balance (without the blacklist bit).
    function balanceOf(address account) external view returns (uint256) {
        return _balanceOf(account);
    }

    /// @notice Allowance.
    function allowance(address holder, address spender) external view returns (uint256) {
        return allowed[holder][spender];
    }

    /// @notice Approve (V2_2: no blacklist check).
    function approve(address spender, uint256 value) external whenNotPaused returns (bool) {
        _approve(msg.sender, spender, value);
        return true;
    }

    /// @notice Transfer.
    function transfer(address to, uint256 value)
        external
        whenNotPaused
        notBlacklisted(msg.sender)
        notBlacklisted(to)
        returns (bool)
    {
        _transfer(msg.sender, to, value);
        return true;
    }

    /// @notice Transfer from `from` by spending the caller's allowance (always decremented, even at max).
    function transferFrom(address from, address to, uint256 value)
        external
        whenNotPaused
        notBlacklisted(msg.sender)
        notBlacklisted(from)
        notBlacklisted(to)
        returns (bool)
    {
        require(value <= allowed[from][msg.sender], "ERC20: transfer amount exceeds allowance");
        _transfer(from, to, value);
        allowed[from][msg.sender] = allowed[from][msg.sender] - value;
        return true;
    }

    /// @notice Increase the caller's allowance for `spender`.
    function increaseAllowance(address spender, uint256 increment) external whenNotPaused returns (bool) {
        _approve(msg.sender, spender, allowed[msg.sender][spender] + increment);
        return true;
    }

    /// @notice Decrease the caller's allowance for `spender`.
    function decreaseAllowance(address spender, uint256 decrement) external whenNotPaused returns (bool) {
        uint256 current = allowed[msg.sender][spender];
        require(decrement <= current, "ERC20: decreased allowance below zero");
        _approve(msg.sender, spender, current - decrement);
        return true;
    }

    // ------------------------------------------------------------------ minting, pausing, blacklisting

    /// @notice Configure a minter (master minter only).
    function configureMinter(address minter, uint256 minterAllowedAmount) external whenNotPaused returns (bool) {
        require(msg.sender == masterMinter, "FiatToken: caller is not the masterMinter");
        minters[minter] = true;
        minterAllowed[minter] = minterAllowedAmount;
        emit MinterConfigured(minter, minterAllowedAmount);
        return true;
    }

    /// @notice Mint (minters only, within their allowance).
    function mint(address to, uint256 amount)
        external
        whenNotPaused
        notBlacklisted(msg.sender)
        notBlacklisted(to)
        returns (bool)
    {
        require(minters[msg.sender], "FiatToken: caller is not a minter");
        require(to != address(0), "FiatToken: mint to the zero address");
        require(amount > 0, "FiatToken: mint amount not greater than 0");
        uint256 mintingAllowedAmount = minterAllowed[msg.sender];
        require(amount <= mintingAllowedAmount, "FiatToken: mint amount exceeds minterAllowance");
        totalSupply_ = totalSupply_ + amount;
        _setBalance(to, _balanceOf(to) + amount);
        minterAllowed[msg.sender] = mintingAllowedAmount - amount;
        emit Mint(msg.sender, to, amount);
        emit Transfer(address(0), to, amount);
        return true;
    }

    /// @notice Pause (pauser only).
    function pause() external {
        require(msg.sender == pauser, "Pausable: caller is not the pauser");
        paused = true;
        emit Pause();
    }

    /// @notice Unpause (pauser only).
    function unpause() external {
        require(msg.sender == pauser, "Pausable: caller is not the pauser");
        paused = false;
        emit Unpause();
    }

    /// @notice Blacklist (blacklister only).
    function blacklist(address account) external {
        require(msg.sender == blacklister, "Blacklistable: caller is not the blacklister");
        _setBlacklistState(account, true);
        emit Blacklisted(account);
    }

    /// @notice Remove from the blacklist (blacklister only).
    function unBlacklist(address account) external {
        require(msg.sender == blacklister, "Blacklistable: caller is not the blacklister");
        _setBlacklistState(account, false);
        emit UnBlacklisted(account);
    }

    /// @notice Whether `account` is blacklisted.
    function isBlacklisted(address account) external view returns (bool) {
        return _isBlacklisted(account);
    }

    /// @notice Owner.
    function owner() external view returns (address) {
        return _owner;
    }

    /// @notice Transfer ownership (owner only).
    function transferOwnership(address newOwner) external onlyOwner {
        require(newOwner != address(0), "Ownable: new owner is the zero address");
        _owner = newOwner;
    }

    // ------------------------------------------------------------------ EIP-712, EIP-2612

    /// @notice EIP-712 version.
    function version() external pure returns (string memory) {
        return "2";
    }

    /// @notice The EIP-712 domain separator (computed on every call, as in V2_2).
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparator();
    }

    /// @notice EIP-2612 nonce of `holder`.
    function nonces(address holder) external view returns (uint256) {
        return _permitNonces[holder];
    }

    /// @notice EIP-2612 permit (V2_2: no blacklist check).
    function permit(address holder, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
        whenNotPaused
    {
        _permit(holder, spender, value, deadline, abi.encodePacked(r, s, v));
    }

    /// @notice EIP-2612 permit with a packed (r, s, v) or ERC-1271 signature.
    function permit(address holder, address spender, uint256 value, uint256 deadline, bytes memory signature)
        external
        whenNotPaused
    {
        _permit(holder, spender, value, deadline, signature);
    }

    // ------------------------------------------------------------------ EIP-3009

    /// @notice Whether `authorizer` used or cancelled `nonce`.
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool) {
        return _authorizationStates[authorizer][nonce];
    }

    /// @notice EIP-3009 transfer, submitted by anyone.
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external whenNotPaused notBlacklisted(from) notBlacklisted(to) {
        _transferWithAuthorization(
            TRANSFER_WITH_AUTHORIZATION_TYPEHASH,
            from,
            to,
            value,
            validAfter,
            validBefore,
            nonce,
            abi.encodePacked(r, s, v)
        );
    }

    /// @notice EIP-3009 transfer, submitted by the payee `to` only.
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external whenNotPaused notBlacklisted(from) notBlacklisted(to) {
        require(to == msg.sender, "FiatTokenV2: caller must be the payee");
        _transferWithAuthorization(
            RECEIVE_WITH_AUTHORIZATION_TYPEHASH,
            from,
            to,
            value,
            validAfter,
            validBefore,
            nonce,
            abi.encodePacked(r, s, v)
        );
    }

    /// @notice Cancel an unused authorization.
    function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s)
        external
        whenNotPaused
    {
        require(!_authorizationStates[authorizer][nonce], "FiatTokenV2: authorization is used or canceled");
        _requireValidSignature(
            authorizer,
            keccak256(abi.encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce)),
            abi.encodePacked(r, s, v)
        );
        _authorizationStates[authorizer][nonce] = true;
        emit AuthorizationCanceled(authorizer, nonce);
    }

    // ------------------------------------------------------------------ internals

    function _transferWithAuthorization(
        bytes32 typeHash,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) internal {
        require(block.timestamp > validAfter, "FiatTokenV2: authorization is not yet valid");
        require(block.timestamp < validBefore, "FiatTokenV2: authorization is expired");
        require(!_authorizationStates[from][nonce], "FiatTokenV2: authorization is used or canceled");
        _requireValidSignature(
            from, keccak256(abi.encode(typeHash, from, to, value, validAfter, validBefore, nonce)), signature
        );
        _authorizationStates[from][nonce] = true;
        emit AuthorizationUsed(from, nonce);
        _transfer(from, to, value);
    }

    function _permit(address holder, address spender, uint256 value, uint256 deadline, bytes memory signature)
        internal
    {
        require(deadline == type(uint256).max || deadline >= block.timestamp, "FiatTokenV2: permit is expired");
        bytes32 structHash =
            keccak256(abi.encode(PERMIT_TYPEHASH, holder, spender, value, _permitNonces[holder]++, deadline));
        require(
            SignatureCheckerLike.isValidSignatureNow(holder, _toTypedDataHash(structHash), signature),
            "EIP2612: invalid signature"
        );
        _approve(holder, spender, value);
    }

    function _requireValidSignature(address signer, bytes32 structHash, bytes memory signature) internal view {
        require(
            SignatureCheckerLike.isValidSignatureNow(signer, _toTypedDataHash(structHash), signature),
            "FiatTokenV2: invalid signature"
        );
    }

    function _toTypedDataHash(bytes32 structHash) internal view returns (bytes32 digest) {
        bytes32 domainSeparator = _domainSeparator();
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore(ptr, hex"1901")
            mstore(add(ptr, 0x02), domainSeparator)
            mstore(add(ptr, 0x22), structHash)
            digest := keccak256(ptr, 0x42)
        }
    }

    function _domainSeparator() internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                EIP712_DOMAIN_TYPEHASH, keccak256(bytes(name)), keccak256(bytes("2")), block.chainid, address(this)
            )
        );
    }

    function _approve(address holder, address spender, uint256 value) internal {
        require(holder != address(0), "ERC20: approve from the zero address");
        require(spender != address(0), "ERC20: approve to the zero address");
        allowed[holder][spender] = value;
        emit Approval(holder, spender, value);
    }

    function _transfer(address from, address to, uint256 value) internal {
        require(from != address(0), "ERC20: transfer from the zero address");
        require(to != address(0), "ERC20: transfer to the zero address");
        require(value <= _balanceOf(from), "ERC20: transfer amount exceeds balance");
        _setBalance(from, _balanceOf(from) - value);
        _setBalance(to, _balanceOf(to) + value);
        emit Transfer(from, to, value);
    }

    function _setBlacklistState(address account, bool shouldBlacklist) internal {
        balanceAndBlacklistStates[account] =
            shouldBlacklist ? balanceAndBlacklistStates[account] | (1 << 255) : _balanceOf(account);
    }

    function _setBalance(address account, uint256 balance) internal {
        require(balance <= ((1 << 255) - 1), "FiatTokenV2_2: Balance exceeds (2^255 - 1)");
        require(!_isBlacklisted(account), "FiatTokenV2_2: Account is blacklisted");
        balanceAndBlacklistStates[account] = balance;
    }

    function _isBlacklisted(address account) internal view returns (bool) {
        return balanceAndBlacklistStates[account] >> 255 == 1;
    }

    function _balanceOf(address account) internal view returns (uint256) {
        return balanceAndBlacklistStates[account] & ((1 << 255) - 1);
    }
}
