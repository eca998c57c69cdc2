"""The listener: the Linux data plane that owns every client connection.

Owns: the listener process (an asyncio shell around the sans-I/O ``http1`` parser and the pure
``routing`` table) and the private channel protocol between it and the controller. Runs unprivileged:
the controller binds the ports and hands them over, and pushes the routing table.
"""
