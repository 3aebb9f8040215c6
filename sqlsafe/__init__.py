"""sqlsafe: keeps database migrations from hurting production."""

__version__ = "0.1.0"
