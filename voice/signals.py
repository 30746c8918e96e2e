"""What `voice` announces, so that a higher layer can react without `voice` importing it.

`media_stored` is sent (awaited, `asend`) after an upload's file is stored, before the
upload is answered: `rooms` connects the receiver that touches the room (see
`rooms.apps.RoomsConfig.ready`). A receiver's error fails the upload, as the touch did
when it was called directly. Keyword arguments: `room_id`, `kind`, `file_id`, `username`.
"""

from django.dispatch import Signal

media_stored = Signal()
