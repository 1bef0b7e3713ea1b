"""The declarative rule language: loading, compiling, linting and testing rule sets."""
