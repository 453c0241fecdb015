//! Runnable example programs (distributed locking, leader election, feature-flag watching); they arrive with the recipes and SDK issue.
