# host/train — schedules, the trainer loop, checkpoints (CRC-32 from zlib).
find_package(ZLIB REQUIRED)
list(APPEND CULORA_SOURCES host/train/schedule.c host/train/trainer.c host/train/checkpoint.c)
list(APPEND CULORA_LINK_LIBS ZLIB::ZLIB)
