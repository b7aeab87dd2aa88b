"""What every stage runs on: the device mesh (``devices``), several processes or hosts
(``distributed``), memory for streamed chunks (``memory``), files written atomically
(``files``)."""
