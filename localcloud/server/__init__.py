"""The localcloud server: moto for the AWS APIs, our own handlers for what moto lacks."""
