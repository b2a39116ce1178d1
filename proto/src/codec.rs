//! The gRPC codec of every Flint service: prost, with small initial buffers.
//!
//! tonic's default codec starts every stream's encode and decode buffers at 8 KiB. A master
//! holds one long-lived stream per worker whose messages are a few dozen bytes, so those
//! buffers were a large share of its memory per worker; 1 KiB buffers grow on demand for
//! the rare large message (artifact chunks, cluster state).

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstDecoder, ProstEncoder};

fn settings() -> BufferSettings {
    BufferSettings::new(1024, 32 * 1024)
}

#[derive(Debug, Clone)]
pub struct SmallBufferCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for SmallBufferCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for SmallBufferCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder::new(settings())
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::new(settings())
    }
}
