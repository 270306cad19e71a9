"""The contract between services: queue names, queue payload codecs and generated protobuf code."""
