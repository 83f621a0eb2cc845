"""clipbridge: MQTT incidents in, lossless FFmpeg stream-copy clips out."""

__version__ = "0.1.0"
