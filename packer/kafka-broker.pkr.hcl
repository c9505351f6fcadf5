# The Kafka broker AMI: Ubuntu 24.04 LTS, Apache Kafka 3.9 (ZooKeeper mode; Kafka 4 removed it),
# kafka-bootstrap built from this repository on the same base, and the units enabled. For
# Packer 1.10 or later: `packer init packer/ && packer build packer/`.

packer {
  required_version = ">= 1.10.0"
  required_plugins {
    amazon = {
      version = ">= 1.3.0"
      source  = "github.com/hashicorp/amazon"
    }
  }
}

variable "region" {
  type        = string
  default     = "us-east-1"
  description = "Region the AMI is built in."
}

variable "instance_type" {
  type        = string
  default     = "m7i.large"
  description = "Instance type of the build instance (x86_64, like the base filter)."
}

variable "subnet_id" {
  type        = string
  default     = null
  description = "Subnet of the build instance; null for the default VPC."
}

variable "base_ami_name" {
  type        = string
  default     = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
  description = "Name filter of the base AMI: the newest match is used."
}

variable "base_ami_owners" {
  type        = list(string)
  default     = ["099720109477"]
  description = "Accounts allowed to own the base AMI (Canonical's)."
}

variable "kafka_version" {
  type        = string
  default     = "3.9.2"
  description = "Apache Kafka release: the latest 3.9, the last line with ZooKeeper mode."

  validation {
    condition     = can(regex("^3\\.9\\.[0-9]+$", var.kafka_version))
    error_message = "Kafka 3.9.x only: ZooKeeper mode, which kafka-bootstrap uses, ends with 3.9."
  }
}

variable "scala_version" {
  type        = string
  default     = "2.13"
  description = "Scala build of the Kafka tarball."
}

variable "kafka_mirror" {
  type        = string
  default     = "https://archive.apache.org/dist/kafka"
  description = "Apache distribution directory holding <version>/kafka_<scala>-<version>.tgz and KEYS."
}

variable "kafka_sha512" {
  type        = string
  default     = ""
  description = "SHA-512 the tarball must have; empty trusts the release's signed .sha512 file alone."
}

variable "kafka_uid" {
  type        = number
  default     = 9092
  description = "Fixed UID of the kafka user: volumes keep their owner across instances."
}

variable "kafka_gid" {
  type        = number
  default     = 9092
  description = "Fixed GID of the kafka group."
}

variable "ami_name_prefix" {
  type    = string
  default = "kafka-broker"
}

locals {
  built = formatdate("YYYYMMDD-hhmmss", timestamp())
  repo  = abspath("${path.root}/..")
}

source "amazon-ebs" "broker" {
  region          = var.region
  instance_type   = var.instance_type
  subnet_id       = var.subnet_id
  ssh_username    = "ubuntu"
  ami_name        = "${var.ami_name_prefix}-kafka-${var.kafka_version}-${local.built}"
  ami_description = "Kafka ${var.kafka_version} broker (ZooKeeper mode) with kafka-bootstrap"
  # Instances of this AMI require IMDSv2 by default, as the build instance does.
  imds_support = "v2.0"

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "enabled"
  }

  source_ami_filter {
    filters = {
      name                = var.base_ami_name
      architecture        = "x86_64"
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = var.base_ami_owners
    most_recent = true
  }

  launch_block_device_mappings {
    device_name           = "/dev/sda1"
    volume_size           = 16
    volume_type           = "gp3"
    encrypted             = true
    delete_on_termination = true
  }

  tags = {
    Name          = "${var.ami_name_prefix}-kafka-${var.kafka_version}"
    kafka_version = var.kafka_version
    base_ami      = "{{ .SourceAMI }}"
  }
}

build {
  sources = ["source.amazon-ebs.broker"]

  provisioner "shell" {
    inline = ["mkdir -p /tmp/kafka-bootstrap-src"]
  }

  # kafka-bootstrap's sources, built into its .deb on the base it will run on.
  provisioner "file" {
    sources = [
      "${local.repo}/CMakeLists.txt",
      "${local.repo}/LICENSE",
      "${local.repo}/dist",
      "${local.repo}/include",
      "${local.repo}/src",
    ]
    destination = "/tmp/kafka-bootstrap-src/"
  }

  provisioner "file" {
    sources = [
      "${path.root}/files/kafka.service",
      "${path.root}/scripts/verify-sha512.sh",
    ]
    destination = "/tmp/"
  }

  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; sudo env {{ .Vars }} {{ .Path }}"
    environment_vars = [
      "KAFKA_VERSION=${var.kafka_version}",
      "SCALA_VERSION=${var.scala_version}",
      "KAFKA_MIRROR=${var.kafka_mirror}",
      "KAFKA_SHA512=${var.kafka_sha512}",
      "KAFKA_UID=${var.kafka_uid}",
      "KAFKA_GID=${var.kafka_gid}",
    ]
    scripts = [
      "${path.root}/scripts/base.sh",
      "${path.root}/scripts/kafka.sh",
      "${path.root}/scripts/kafka-bootstrap.sh",
      "${path.root}/scripts/enable.sh",
    ]
  }
}
