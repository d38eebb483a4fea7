"""The one training engine shared by every tfxfer model."""
