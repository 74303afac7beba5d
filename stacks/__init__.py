"""The medscribe CDK stack: one construct module per concern, composed in `medscribe_stack`."""
