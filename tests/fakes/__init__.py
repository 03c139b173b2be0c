"""Hand-written fakes shared by the test suites (no Mock())."""
