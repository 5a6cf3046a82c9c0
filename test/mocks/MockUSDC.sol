// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";

/// @title MockUSDC
/// @notice Test and devnet stand-in for USDC: 6 decimals, EIP-2612 permit, EIP-3009 transfer/receive with
///         authorization (USDC's type hashes), and a USDC-style blacklist that makes transfers from or to a
///         blacklisted address revert. Minting is open to anyone: never deploy it outside a devnet.
/// @dev Signs like USDC (FiatTokenV2_2): name "USD Coin", symbol "USDC", `version()` "2", and the EIP-712
///      domain ("USD Coin", "2", chainId, this address) for permit and the EIP-3009 calls, also reported by
///      `eip712Domain()` (ERC-5267). OpenZeppelin's ERC20Permit fixes the domain version at "1", so permit is
///      implemented here (as in ERC20Permit, with its errors) over an EIP712 domain of version "2".
contract MockUSDC is ERC20, IERC20Permit, EIP712, Nonces {
    /// @notice EIP-2612 Permit type hash.
    bytes32 public constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");
    /// @notice EIP-3009 TransferWithAuthorization type hash (as in USDC).
    bytes32 public constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    /// @notice EIP-3009 ReceiveWithAuthorization type hash (as in USDC).
    bytes32 public constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    /// @notice EIP-3009 CancelAuthorization type hash (as in USDC).
    bytes32 public constant CANCEL_AUTHORIZATION_TYPEHASH =
        keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");

    /// @notice Whether `authorizer` has used or cancelled `nonce`.
    mapping(address authorizer => mapping(bytes32 nonce => bool)) public authorizationState;
    /// @notice Whether `account` is blacklisted.
    mapping(address account => bool) public isBlacklisted;

    /// @notice Emitted when an authorization is used.
    event AuthorizationUsed(address indexed authorizer, bytes32 indexed nonce);
    /// @notice Emitted when an authorization is cancelled.
    event AuthorizationCanceled(address indexed authorizer, bytes32 indexed nonce);
    /// @notice Emitted when an account is blacklisted.
    event Blacklisted(address indexed account);
    /// @notice Emitted when an account is removed from the blacklist.
    event UnBlacklisted(address indexed account);

    /// @notice The account is blacklisted.
    error AccountBlacklisted(address account);
    /// @notice The authorization is not valid yet.
    error AuthorizationNotYetValid(uint256 validAfter);
    /// @notice The authorization expired.
    error AuthorizationExpired(uint256 validBefore);
    /// @notice The nonce was used or cancelled.
    error AuthorizationUsedOrCanceled(address authorizer, bytes32 nonce);
    /// @notice The signature does not recover to the authorizer.
    error InvalidSignature();
    /// @notice receiveWithAuthorization must be called by the payee.
    error CallerMustBePayee(address caller, address payee);
    /// @notice The permit's deadline has passed (OpenZeppelin ERC20Permit's error).
    error ERC2612ExpiredSignature(uint256 deadline);
    /// @notice The permit's signature recovers to `signer`, not to `owner` (OpenZeppelin ERC20Permit's error).
    error ERC2612InvalidSigner(address signer, address owner);

    constructor() ERC20("USD Coin", "USDC") EIP712("USD Coin", "2") {}

    /// @notice The EIP-712 domain version, "2" as in USDC (FiatTokenV2_2).
    function version() external pure returns (string memory) {
        return "2";
    }

    /// @notice 6, like USDC.
    function decimals() public pure override returns (uint8) {
        return 6;
    }

    /// @notice EIP-2612: set `spender`'s allowance over `owner`'s tokens to `value` by `owner`'s signature.
    function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external
    {
        if (block.timestamp > deadline) revert ERC2612ExpiredSignature(deadline);
        bytes32 structHash = keccak256(abi.encode(PERMIT_TYPEHASH, owner, spender, value, _useNonce(owner), deadline));
        address signer = ECDSA.recover(_hashTypedDataV4(structHash), v, r, s);
        if (signer != owner) revert ERC2612InvalidSigner(signer, owner);
        _approve(owner, spender, value);
    }

    /// @notice EIP-2612: the next permit nonce of `owner`.
    function nonces(address owner) public view override(IERC20Permit, Nonces) returns (uint256) {
        return super.nonces(owner);
    }

    /// @notice EIP-2612: the EIP-712 domain separator ("USD Coin", "2", chainId, this address).
    // forge-lint: disable-next-line(mixed-case-function)
    function DOMAIN_SEPARATOR() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice Mint `amount` to `to` (open to anyone: devnet and tests only).
    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    /// @notice Blacklist `account` (open to anyone: tests only).
    function blacklist(address account) external {
        isBlacklisted[account] = true;
        emit Blacklisted(account);
    }

    /// @notice Remove `account` from the blacklist.
    function unBlacklist(address account) external {
        isBlacklisted[account] = false;
        emit UnBlacklisted(account);
    }

    /// @notice EIP-3009 transfer signed by `from`, submitted by anyone.
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
    ) external {
        _useAuthorization(
            TRANSFER_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, v, r, s
        );
        _transfer(from, to, value);
    }

    /// @notice EIP-3009 transfer signed by `from`, submitted by the payee `to` only.
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
    ) external {
        if (msg.sender != to) revert CallerMustBePayee(msg.sender, to);
        _useAuthorization(RECEIVE_WITH_AUTHORIZATION_TYPEHASH, from, to, value, validAfter, validBefore, nonce, v, r, s);
        _transfer(from, to, value);
    }

    /// @notice Cancel an unused authorization.
    function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external {
        if (authorizationState[authorizer][nonce]) revert AuthorizationUsedOrCanceled(authorizer, nonce);
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce)));
        if (ECDSA.recover(digest, v, r, s) != authorizer) revert InvalidSignature();
        authorizationState[authorizer][nonce] = true;
        emit AuthorizationCanceled(authorizer, nonce);
    }

    function _useAuthorization(
        bytes32 typeHash,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) private {
        if (block.timestamp <= validAfter) revert AuthorizationNotYetValid(validAfter);
        if (block.timestamp >= validBefore) revert AuthorizationExpired(validBefore);
        if (authorizationState[from][nonce]) revert AuthorizationUsedOrCanceled(from, nonce);
        bytes32 digest =
            _hashTypedDataV4(keccak256(abi.encode(typeHash, from, to, value, validAfter, validBefore, nonce)));
        if (ECDSA.recover(digest, v, r, s) != from) revert InvalidSignature();
        authorizationState[from][nonce] = true;
        emit AuthorizationUsed(from, nonce);
    }

    function _update(address from, address to, uint256 value) internal override {
        if (isBlacklisted[from]) revert AccountBlacklisted(from);
        if (isBlacklisted[to]) revert AccountBlacklisted(to);
        super._update(from, to, value);
    }
}
