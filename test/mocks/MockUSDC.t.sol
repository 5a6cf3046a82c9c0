// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {Test} from "../lib/Test.sol";
import {VM} from "../lib/Vm.sol";
import {MockUSDC} from "./MockUSDC.sol";

/// @notice What a client written for USDC (FiatTokenV2_2) reads from the token: its metadata, `version()`, and
///         the ERC-5267 domain. Declared here rather than taken from MockUSDC, so the test checks the mock
///         against USDC's interface, not against itself.
interface IUSDCLike {
    function name() external view returns (string memory);
    function symbol() external view returns (string memory);
    function decimals() external view returns (uint8);
    function version() external view returns (string memory);
    // forge-lint: disable-next-line(mixed-case-function)
    function DOMAIN_SEPARATOR() external view returns (bytes32);
    function eip712Domain()
        external
        view
        returns (
            bytes1 fields,
            string memory name,
            string memory version,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        );
    function nonces(address owner) external view returns (uint256);
    function allowance(address owner, address spender) external view returns (uint256);
    function balanceOf(address account) external view returns (uint256);
    function permit(address owner, address spender, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s)
        external;
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
    ) external;
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
    ) external;
}

/// @notice MockUSDC signs like USDC: name "USD Coin", symbol "USDC", 6 decimals, EIP-712 domain
///         ("USD Coin", "2", chainId, token), so a signature made for USDC is accepted by the devnet token.
contract MockUSDCTest is Test {
    uint256 internal constant START = 1_700_000_000;
    uint256 internal constant FUNDS = 1000e6;

    bytes32 internal constant EIP712_DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant PERMIT_TYPEHASH =
        keccak256("Permit(address owner,address spender,uint256 value,uint256 nonce,uint256 deadline)");
    bytes32 internal constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );

    MockUSDC internal mock;
    IUSDCLike internal usdc;
    address internal owner;
    uint256 internal ownerKey;
    address internal recipient;

    function setUp() public {
        VM.warp(START);
        mock = new MockUSDC();
        usdc = IUSDCLike(address(mock));
        (owner, ownerKey) = makeAddrAndKey("owner");
        recipient = makeAddr("recipient");
        mock.mint(owner, FUNDS);
    }

    /// @dev USDC's domain separator on the current chain, computed from the constants, not read from the token.
    function _usdcDomainSeparator(string memory version) internal view returns (bytes32) {
        return keccak256(
            abi.encode(
                EIP712_DOMAIN_TYPEHASH, keccak256("USD Coin"), keccak256(bytes(version)), block.chainid, address(usdc)
            )
        );
    }

    function _sign(string memory version, bytes32 structHash) internal view returns (uint8 v, bytes32 r, bytes32 s) {
        return VM.sign(ownerKey, keccak256(abi.encodePacked("\x19\x01", _usdcDomainSeparator(version), structHash)));
    }

    function _signAuthorization(string memory version, bytes32 typeHash, bytes32 nonce)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        return _sign(version, keccak256(abi.encode(typeHash, owner, recipient, 1e6, 0, START + 1 hours, nonce)));
    }

    // ------------------------------------------------------------------ metadata

    function test_metadata_isUsdcs() public view {
        assertEq(usdc.name(), "USD Coin", "name");
        assertEq(usdc.symbol(), "USDC", "symbol");
        assertEq(uint256(usdc.decimals()), 6, "decimals");
    }

    function test_version_is2() public view {
        assertEq(usdc.version(), "2", "version");
    }

    // ------------------------------------------------------------------ EIP-712 domain

    function test_eip712Domain_isUsdcs() public view {
        (
            bytes1 fields,
            string memory name,
            string memory version,
            uint256 chainId,
            address verifyingContract,
            bytes32 salt,
            uint256[] memory extensions
        ) = usdc.eip712Domain();
        assertEq(uint256(uint8(fields)), 0x0f, "fields: name, version, chainId, verifyingContract");
        assertEq(name, "USD Coin", "domain name");
        assertEq(version, "2", "domain version");
        assertEq(chainId, block.chainid, "domain chainId");
        assertEq(verifyingContract, address(usdc), "domain verifyingContract");
        assertEq(salt, bytes32(0), "domain salt");
        assertEq(extensions.length, 0, "domain extensions");
    }

    function test_eip712Domain_agreesWithNameAndVersion() public view {
        (, string memory name, string memory version,,,,) = usdc.eip712Domain();
        assertEq(name, usdc.name(), "domain name vs name()");
        assertEq(version, usdc.version(), "domain version vs version()");
    }

    function test_domainSeparator_isUsdcs() public view {
        assertEq(usdc.DOMAIN_SEPARATOR(), _usdcDomainSeparator("2"), "DOMAIN_SEPARATOR");
    }

    function test_domainSeparator_followsTheChainId() public {
        VM.chainId(8453);
        assertEq(usdc.DOMAIN_SEPARATOR(), _usdcDomainSeparator("2"), "DOMAIN_SEPARATOR on chain 8453");
        (,,, uint256 chainId,,,) = usdc.eip712Domain();
        assertEq(chainId, 8453, "domain chainId");
    }

    // ------------------------------------------------------------------ signatures made for USDC

    function test_permit_acceptsUsdcSignature() public {
        uint256 deadline = START + 1 hours;
        bytes32 structHash = keccak256(abi.encode(PERMIT_TYPEHASH, owner, recipient, 5e6, usdc.nonces(owner), deadline));
        (uint8 v, bytes32 r, bytes32 s) = _sign("2", structHash);
        usdc.permit(owner, recipient, 5e6, deadline, v, r, s);
        assertEq(usdc.allowance(owner, recipient), 5e6, "allowance");
        assertEq(usdc.nonces(owner), 1, "nonce used");
    }

    function test_transferWithAuthorization_acceptsUsdcSignature() public {
        bytes32 nonce = keccak256("transfer");
        (uint8 v, bytes32 r, bytes32 s) = _signAuthorization("2", TRANSFER_WITH_AUTHORIZATION_TYPEHASH, nonce);
        usdc.transferWithAuthorization(owner, recipient, 1e6, 0, START + 1 hours, nonce, v, r, s);
        assertEq(usdc.balanceOf(recipient), 1e6, "recipient balance");
    }

    function test_receiveWithAuthorization_acceptsUsdcSignature() public {
        bytes32 nonce = keccak256("receive");
        (uint8 v, bytes32 r, bytes32 s) = _signAuthorization("2", RECEIVE_WITH_AUTHORIZATION_TYPEHASH, nonce);
        VM.prank(recipient);
        usdc.receiveWithAuthorization(owner, recipient, 1e6, 0, START + 1 hours, nonce, v, r, s);
        assertEq(usdc.balanceOf(recipient), 1e6, "recipient balance");
    }

    function test_transferWithAuthorization_rejectsVersion1Signature() public {
        bytes32 nonce = keccak256("transfer");
        (uint8 v, bytes32 r, bytes32 s) = _signAuthorization("1", TRANSFER_WITH_AUTHORIZATION_TYPEHASH, nonce);
        VM.expectRevert(MockUSDC.InvalidSignature.selector);
        usdc.transferWithAuthorization(owner, recipient, 1e6, 0, START + 1 hours, nonce, v, r, s);
    }
}
