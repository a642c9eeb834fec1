"""Pure computation on frames: pose, walker selection, hazards and the alert policy. No I/O, no asyncio."""
