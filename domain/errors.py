"""Domain errors: the rules a command can break.

DomainError
├── UnknownProviderError
├── UnknownWorkloadError
├── InvalidModelNameError
├── InvalidPromptError
├── ValueOutOfRangeError
│   └── InvalidPriorityError
├── NotActiveError
└── SuggestionStateError
"""

from __future__ import annotations


class DomainError(Exception):
    """Raised when a command breaks a rule of the catalog."""


class UnknownProviderError(DomainError):
    """Raised when a provider name is not one the catalog knows."""


class UnknownWorkloadError(DomainError):
    """Raised when a workload name is not one of the workload categories."""


class InvalidModelNameError(DomainError):
    """Raised when a model identifier is empty or not plausible."""


class InvalidPromptError(DomainError):
    """Raised when a prompt is not valid UTF-8 text (it could never be sent)."""


class ValueOutOfRangeError(DomainError):
    """Raised when a number is not of its kind or outside its range (domain.ranges)."""


class InvalidPriorityError(ValueOutOfRangeError):
    """Raised when a priority is not a whole number from 0 to 2,147,483,647."""


class NotActiveError(DomainError):
    """Raised when retiring or changing a roster entry that is not active."""


class SuggestionStateError(DomainError):
    """Raised when a suggestion cannot move to the asked status from its current one."""
