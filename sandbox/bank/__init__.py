"""The synthetic bank: a profile and (seed, partner) → customers, accounts and histories."""

from sandbox.bank.generate import SyntheticBank, generate_bank
from sandbox.bank.profile import BankProfile, load_profile

__all__ = ["BankProfile", "SyntheticBank", "generate_bank", "load_profile"]
